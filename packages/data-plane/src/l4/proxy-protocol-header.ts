/**
 * The PROXY protocol header the data plane sends to the backends of pools with `proxyProtocol`:
 * the client's address and the address it connected to, before any byte of the client's own.
 * Addresses of mixed families are sent as IPv6 (IPv4 ones mapped), as HAProxy does.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { ProxyProtocolVersion } from '@lb/shared';
import { type ProxiedAddresses, V2_SIGNATURE } from './proxy-protocol-parser.js';

/** `::ffff:10.0.0.1` → `10.0.0.1`: node reports IPv4 clients of dual-stack sockets that way. */
export function unmapIPv4(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
}

function mapToIPv6(address: string): string {
  return isIPv4(address) ? `::ffff:${address}` : address;
}

export function proxyProtocolHeader(version: ProxyProtocolVersion, addresses: ProxiedAddresses | undefined): Buffer {
  const source = addresses === undefined ? undefined : unmapIPv4(addresses.sourceAddress);
  const destination = addresses === undefined ? undefined : unmapIPv4(addresses.destinationAddress);
  const known = addresses !== undefined && (isIPv4(source!) || isIPv6(source!)) && (isIPv4(destination!) || isIPv6(destination!));
  if (version === 'v1') {
    if (!known) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
    const v4 = isIPv4(source!) && isIPv4(destination!);
    const [s, d] = v4 ? [source!, destination!] : [mapToIPv6(source!), mapToIPv6(destination!)];
    return Buffer.from(`PROXY ${v4 ? 'TCP4' : 'TCP6'} ${s} ${d} ${addresses.sourcePort} ${addresses.destinationPort}\r\n`, 'latin1');
  }
  if (!known) {
    // LOCAL with no addresses: the backend uses the connection's own.
    const header = Buffer.alloc(16);
    V2_SIGNATURE.copy(header);
    header[12] = 0x20;
    return header;
  }
  const v4 = isIPv4(source!) && isIPv4(destination!);
  const length = v4 ? 12 : 36;
  const header = Buffer.alloc(16 + length);
  V2_SIGNATURE.copy(header);
  header[12] = 0x21;
  header[13] = v4 ? 0x11 : 0x21;
  header.writeUInt16BE(length, 14);
  const width = v4 ? 4 : 16;
  writeAddress(header, 16, v4 ? source! : mapToIPv6(source!));
  writeAddress(header, 16 + width, v4 ? destination! : mapToIPv6(destination!));
  header.writeUInt16BE(addresses.sourcePort, 16 + 2 * width);
  header.writeUInt16BE(addresses.destinationPort, 18 + 2 * width);
  return header;
}

function writeAddress(out: Buffer, at: number, address: string): void {
  if (isIPv4(address)) {
    address.split('.').forEach((octet, i) => {
      out[at + i] = Number(octet);
    });
    return;
  }
  let text = address;
  // A trailing dotted quad (`::ffff:10.0.0.1`) is the last two groups.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted !== null) {
    const [a, b, c, d] = dotted[1]!.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, -dotted[1]!.length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? (text.split('::') as [string, string]) : [text, undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  for (const [i, g] of groups.entries()) out.writeUInt16BE(Number.parseInt(g, 16), at + 2 * i);
}
