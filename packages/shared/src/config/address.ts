/** Parsing of backend addresses (`host:port`, `[v6]:port`). */

export interface HostPort {
  host: string;
  port: number;
}

const HOSTNAME_RE = /^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6_RE = /^[0-9a-fA-F:.]+$/;

/** Looks like an IPv4 address (digits and dots only), so it must be one: never a host name. */
const DOTTED_DIGITS_RE = /^[\d.]+$/;

/** Returns the parsed address, or a message saying what is wrong with it. */
export function parseHostPort(address: string): HostPort | string {
  let host: string;
  let portText: string;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(address);
  if (scheme) return `must be host:port without a scheme: drop "${scheme[0]}"`;
  if (address.includes('/')) return 'must be host:port without a path';
  if (address.startsWith('[')) {
    const close = address.indexOf(']');
    if (close < 0 || address[close + 1] !== ':') return 'must be host:port ([v6]:port for IPv6)';
    host = address.slice(1, close);
    portText = address.slice(close + 2);
    if (!IPV6_RE.test(host) || !host.includes(':')) return `"${host}" is not an IPv6 address`;
  } else {
    const colon = address.lastIndexOf(':');
    if (colon < 0) return 'must be host:port (the port is missing)';
    host = address.slice(0, colon);
    portText = address.slice(colon + 1);
    if (host.includes(':')) return 'IPv6 addresses must be in brackets: [v6]:port';
    if (DOTTED_DIGITS_RE.test(host)) {
      if (!IPV4_RE.test(host)) return `"${host}" is not an IPv4 address: it needs 4 numbers from 0 to 255 (no leading zeros), e.g. 10.0.0.1`;
    } else if (!HOSTNAME_RE.test(host)) return `"${host}" is not a valid host name or IPv4 address`;
  }
  if (!/^\d{1,5}$/.test(portText)) return 'must be host:port with a numeric port';
  const port = Number(portText);
  if (port < 1 || port > 65535) return 'port must be 1..65535';
  return { host, port };
}

/** Host names in route matches: a host name, optionally with a leading `*.` wildcard label. */
export function isValidMatchHost(host: string): boolean {
  const bare = host.startsWith('*.') ? host.slice(2) : host;
  return HOSTNAME_RE.test(bare) || IPV4_RE.test(bare);
}
