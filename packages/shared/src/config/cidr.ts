/** CIDR blocks (`10.0.0.0/8`, `::1/128`, or a bare address for one host), as listeners' trusted sources name them. */
import { isIP } from 'node:net';

export interface Cidr {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/** The parsed block, or a message saying what is wrong with it. */
export function parseCidr(text: string): Cidr | string {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const version = isIP(address);
  if (version === 0) return `"${address}" is not an IPv4 or IPv6 address`;
  const bits = version === 4 ? 32 : 128;
  if (slash < 0) return { address, prefix: bits, family: version === 4 ? 'ipv4' : 'ipv6' };
  const prefixText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > bits) return `the prefix length must be 0..${bits}`;
  return { address, prefix: Number(prefixText), family: version === 4 ? 'ipv4' : 'ipv6' };
}
