/**
 * Reads the PROXY protocol header (HAProxy's spec, v1 text and v2 binary) an outer balancer puts
 * before a connection's own bytes. Bytes come from the network: every length is checked, nothing
 * is trusted, and anything that is not a well-formed header is `invalid` (the listener closes the
 * connection) — a header is never half-believed. Only listeners whose trusted sources sent the
 * connection read one (tcp-listener.ts), so a client cannot name its own address.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** The addresses a header carries; undefined for LOCAL (v2) and UNKNOWN (v1): use the connection's own. */
export interface ProxiedAddresses {
  readonly sourceAddress: string;
  readonly sourcePort: number;
  readonly destinationAddress: string;
  readonly destinationPort: number;
}

export type ProxyHeaderScan =
  /** More bytes are needed. */
  | { readonly state: 'more' }
  /** Not a PROXY header, or a malformed one. */
  | { readonly state: 'invalid'; readonly reason: string }
  /** A whole header of `length` bytes; the connection's own bytes follow it. */
  | { readonly state: 'done'; readonly length: number; readonly addresses: ProxiedAddresses | undefined };

/** v1's longest line (spec §2.1), CRLF included. */
export const MAX_V1_HEADER = 107;
/** The longest v2 header taken: 16 fixed bytes and the addresses with room for TLVs (HAProxy's own limit is its buffer). */
export const MAX_V2_HEADER = 16 + 2048;

export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');

const MORE: ProxyHeaderScan = { state: 'more' };
const invalid = (reason: string): ProxyHeaderScan => ({ state: 'invalid', reason });

/** Scans the bytes received so far (`data`, from the connection's first byte). */
export function scanProxyHeader(data: Buffer): ProxyHeaderScan {
  if (data.length === 0) return MORE;
  if (data[0] === 0x50 /* P */) return scanV1(data);
  if (data[0] === 0x0d) return scanV2(data);
  return invalid('no PROXY protocol header');
}

/** Whether `data` is a prefix of `signature`, or starts with it. */
function prefixMatches(data: Buffer, signature: Buffer): boolean {
  const n = Math.min(data.length, signature.length);
  return data.subarray(0, n).equals(signature.subarray(0, n));
}

const PORT_RE = /^(0|[1-9]\d{0,4})$/;

function port(text: string | undefined): number | undefined {
  if (text === undefined || !PORT_RE.test(text)) return undefined;
  const n = Number(text);
  return n <= 65535 ? n : undefined;
}

function scanV1(data: Buffer): ProxyHeaderScan {
  if (!prefixMatches(data, V1_PREFIX)) return invalid('no PROXY protocol header');
  const end = data.subarray(0, MAX_V1_HEADER).indexOf('\r\n', 0, 'latin1');
  if (end < 0) return data.length >= MAX_V1_HEADER ? invalid('PROXY v1 line longer than 107 bytes') : MORE;
  const line = data.toString('latin1', 0, end);
  const parts = line.split(' ');
  if (parts[1] === 'UNKNOWN') return { state: 'done', length: end + 2, addresses: undefined };
  if (parts.length !== 6) return invalid('PROXY v1 line does not have 6 fields');
  const [, family, source, destination, sourceText, destinationText] = parts;
  const valid = family === 'TCP4' ? isIPv4 : family === 'TCP6' ? isIPv6 : undefined;
  if (valid === undefined) return invalid('PROXY v1 family is not TCP4, TCP6 or UNKNOWN');
  if (!valid(source!) || !valid(destination!)) return invalid(`PROXY v1 addresses are not ${family} addresses`);
  const sourcePort = port(sourceText);
  const destinationPort = port(destinationText);
  if (sourcePort === undefined || destinationPort === undefined) return invalid('PROXY v1 ports are not 0..65535');
  return { state: 'done', length: end + 2, addresses: { sourceAddress: source!, sourcePort, destinationAddress: destination!, destinationPort } };
}

const CMD_LOCAL = 0x20;
const CMD_PROXY = 0x21;
const TCP4 = 0x11;
const TCP6 = 0x21;

function scanV2(data: Buffer): ProxyHeaderScan {
  if (!prefixMatches(data, V2_SIGNATURE)) return invalid('no PROXY protocol header');
  if (data.length < 16) return MORE;
  const command = data[12]!;
  if (command !== CMD_LOCAL && command !== CMD_PROXY) return invalid('PROXY v2 version or command unknown');
  const family = data[13]!;
  const length = 16 + data.readUInt16BE(14);
  if (length > MAX_V2_HEADER) return invalid(`PROXY v2 header longer than ${MAX_V2_HEADER} bytes`);
  const need = family === TCP4 ? 12 : family === TCP6 ? 36 : 0;
  if (length - 16 < need) return invalid('PROXY v2 address block shorter than its family needs');
  if (data.length < length) return MORE;
  // LOCAL: the balancer's own connection (a health check); other families (UDP, unix, unspecified)
  // carry nothing a TCP listener can use. Both keep the connection's own addresses.
  if (command === CMD_LOCAL || need === 0) return { state: 'done', length, addresses: undefined };
  const body = data.subarray(16, length);
  if (family === TCP4) {
    return {
      state: 'done',
      length,
      addresses: { sourceAddress: ipv4(body, 0), destinationAddress: ipv4(body, 4), sourcePort: body.readUInt16BE(8), destinationPort: body.readUInt16BE(10) },
    };
  }
  return {
    state: 'done',
    length,
    addresses: { sourceAddress: ipv6(body, 0), destinationAddress: ipv6(body, 16), sourcePort: body.readUInt16BE(32), destinationPort: body.readUInt16BE(34) },
  };
}

function ipv4(b: Buffer, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/** RFC 5952 text of 16 bytes (an IPv4-mapped address as `::ffff:a.b.c.d`, as node prints it). */
function ipv6(b: Buffer, at: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(b.readUInt16BE(at + 2 * i));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return `::ffff:${ipv4(b, at + 12)}`;
  // The longest run of two or more zero groups becomes `::`.
  let best = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      best = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number) =>
    groups
      .slice(from, to)
      .map((g) => g.toString(16))
      .join(':');
  return best < 0 ? hex(0, 8) : `${hex(0, best)}::${hex(best + bestLength, 8)}`;
}
