/** The etcd key layout (DESIGN.md), under a configurable prefix (default /lb). */

/** Version keys are zero-padded so etcd's byte order is numeric order (range queries, sorting). */
export const VERSION_DIGITS = 12;

export class EtcdKeys {
  readonly current: string;
  readonly versionsPrefix: string;
  readonly nodesPrefix: string;
  /** `<pool>/<backend>` below it: health written by the health-check leader. */
  readonly healthPrefix: string;
  /** `<pool>/<backend>` below it: self-registered backends, each on its own lease. */
  readonly registrationsPrefix: string;
  /** `<pool>/<backend>/<node>` below it: data planes' outlier ejections, on the receiving replica's lease. */
  readonly ejectionsPrefix: string;
  /** The namespace of the health-check leader election (`election/health` below it). */
  readonly electionNamespace: string;
  /** `<name>` below it: API tokens (hashed secrets). */
  readonly tokensPrefix: string;
  /** Set once, when the first start without --admin-token-file created the `admin` token. */
  readonly adminBootstrapped: string;
  /** `<time>-<random>` below it: the audit trail, in time order. */
  readonly auditPrefix: string;
  /** `<node-id>` below it: the last known record of every node, kept after it disconnects. */
  readonly seenNodesPrefix: string;
  /** `<public key id>` below it: certificates' private keys, sealed (secrets/). */
  readonly privateKeysPrefix: string;
  /** The session-ticket keys every node shares, sealed (tls/ticket-keys.ts). */
  readonly ticketKeys: string;

  constructor(prefix: string) {
    const base = prefix.replace(/\/+$/, '');
    this.current = `${base}/config/current`;
    this.versionsPrefix = `${base}/config/versions/`;
    this.nodesPrefix = `${base}/nodes/`;
    this.healthPrefix = `${base}/health/`;
    this.registrationsPrefix = `${base}/registrations/`;
    this.ejectionsPrefix = `${base}/ejections/`;
    this.electionNamespace = `${base}/`;
    this.tokensPrefix = `${base}/tokens/`;
    this.adminBootstrapped = `${base}/auth/admin-bootstrapped`;
    this.auditPrefix = `${base}/audit/`;
    this.seenNodesPrefix = `${base}/seen-nodes/`;
    this.privateKeysPrefix = `${base}/secrets/keys/`;
    this.ticketKeys = `${base}/secrets/session-ticket-keys`;
  }

  privateKey(id: string): string {
    return this.privateKeysPrefix + id;
  }

  version(n: number): string {
    return this.versionsPrefix + String(n).padStart(VERSION_DIGITS, '0');
  }

  node(id: string): string {
    return this.nodesPrefix + id;
  }

  seenNode(id: string): string {
    return this.seenNodesPrefix + id;
  }

  token(name: string): string {
    return this.tokensPrefix + name;
  }
}
