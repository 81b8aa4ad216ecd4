/**
 * Reads the server name (SNI) from the start of a TLS connection — the ClientHello, which may span
 * several records — so that the listener can pick the SSL context before OpenSSL sees a byte.
 * Node's own SNI callback only swaps the certificate into a context made from the default one,
 * so a TLS 1.3 client that prefers ECDSA still gets an ECDSA default in place of the RSA
 * certificate its name has; choosing the whole context up front avoids that.
 *
 * Bytes come from clients: every length is checked against what is there, nothing is trusted.
 * Whatever is not a well-formed ClientHello yields `done` without a name, and OpenSSL then
 * refuses it with a proper alert (or takes it: the default certificate).
 */

export type ClientHelloScan =
  /** More bytes are needed to see the whole ClientHello. */
  | { readonly state: 'more' }
  /** The name the client asks for, or undefined (no SNI, or not a ClientHello OpenSSL will take). */
  | { readonly state: 'done'; readonly servername: string | undefined };

/** A ClientHello larger than this is not waited for (real ones are under 2 KiB, 4 KiB with post-quantum key shares). */
export const MAX_CLIENT_HELLO = 32 * 1024;

const MORE: ClientHelloScan = { state: 'more' };
const NONE: ClientHelloScan = { state: 'done', servername: undefined };
const RECORD_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXTENSION_SERVER_NAME = 0;
const NAME_TYPE_HOST = 0;
/** A DNS name as SNI may carry it (RFC 6066 §3: no trailing dot, ASCII). */
const HOST_NAME_RE = /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*$/;

/** Scans the bytes received so far (`data`, from the connection's first byte). */
export function scanClientHello(data: Buffer): ClientHelloScan {
  // The handshake message, reassembled from the payloads of the records it spans.
  const payloads: Buffer[] = [];
  let have = 0;
  let need = -1;
  let at = 0;
  while (need < 0 || have < need) {
    if (data.length < at + 5) return data.length >= MAX_CLIENT_HELLO ? NONE : MORE;
    if (data[at] !== RECORD_HANDSHAKE || data[at + 1] !== 3) return NONE;
    const length = data.readUInt16BE(at + 3);
    if (length === 0 || length > 16_384 + 2048) return NONE;
    if (data.length < at + 5 + length) return at + 5 + length > MAX_CLIENT_HELLO ? NONE : MORE;
    payloads.push(data.subarray(at + 5, at + 5 + length));
    have += length;
    at += 5 + length;
    if (need < 0) {
      const first = payloads[0]!;
      if (first.length < 4) return NONE;
      if (first[0] !== HANDSHAKE_CLIENT_HELLO) return NONE;
      need = 4 + first.readUIntBE(1, 3);
      if (need > MAX_CLIENT_HELLO) return NONE;
    }
  }
  const hello = payloads.length === 1 ? payloads[0]! : Buffer.concat(payloads);
  return { state: 'done', servername: serverName(hello.subarray(4, need)) };
}

/** The host_name of the server_name extension of a ClientHello body, if well-formed. */
function serverName(body: Buffer): string | undefined {
  let p = 2 + 32; // legacy_version, random
  if (p + 1 > body.length) return undefined;
  p += 1 + body[p]!; // legacy_session_id
  if (p + 2 > body.length) return undefined;
  p += 2 + body.readUInt16BE(p); // cipher_suites
  if (p + 1 > body.length) return undefined;
  p += 1 + body[p]!; // legacy_compression_methods
  if (p + 2 > body.length) return undefined;
  const end = p + 2 + body.readUInt16BE(p);
  if (end > body.length) return undefined;
  p += 2;
  while (p + 4 <= end) {
    const type = body.readUInt16BE(p);
    const length = body.readUInt16BE(p + 2);
    p += 4;
    if (p + length > end) return undefined;
    if (type === EXTENSION_SERVER_NAME) return hostName(body.subarray(p, p + length));
    p += length;
  }
  return undefined;
}

function hostName(extension: Buffer): string | undefined {
  if (extension.length < 2) return undefined;
  const end = 2 + extension.readUInt16BE(0);
  if (end > extension.length) return undefined;
  let p = 2;
  while (p + 3 <= end) {
    const type = extension[p]!;
    const length = extension.readUInt16BE(p + 1);
    p += 3;
    if (p + length > end) return undefined;
    if (type === NAME_TYPE_HOST) {
      const name = extension.toString('latin1', p, p + length);
      return length <= 253 && HOST_NAME_RE.test(name) ? name.toLowerCase() : undefined;
    }
    p += length;
  }
  return undefined;
}
