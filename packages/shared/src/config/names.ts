/** Names of pools, routes and backends: DNS-label-like so they are safe in URLs, etcd keys and metrics. */
export const NAME_PATTERN = '^[a-z0-9][a-z0-9-]{0,62}$';
const NAME_RE = new RegExp(NAME_PATTERN);

export function isValidName(name: string): boolean {
  return NAME_RE.test(name);
}
