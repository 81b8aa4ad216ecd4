/**
 * The proxy's element of an RFC 7239 `Forwarded` header: `for=…;proto=…;host=…`. Values that are
 * not tokens are quoted (IPv6 addresses go in brackets and quotes, §6; a Host with a port has a
 * `:`), so a hostile Host header cannot add parameters of its own.
 */

const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function quoted(value: string): string {
  return TOKEN_RE.test(value) ? value : `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

export function forwardedElement(clientIp: string | undefined, proto: string, host: string | undefined): string {
  const node = clientIp === undefined ? 'unknown' : clientIp.includes(':') ? `"[${clientIp}]"` : quoted(clientIp);
  return host === undefined ? `for=${node};proto=${proto}` : `for=${node};proto=${proto};host=${quoted(host)}`;
}
