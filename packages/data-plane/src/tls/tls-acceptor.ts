/**
 * The server side of one TLS connection: read the ClientHello off the raw socket, pick the SSL
 * context for the name it asks for, hand the socket (bytes read so far put back) to a server-side
 * TLSSocket on that context, and pass it on once the handshake is done. What tls.Server does,
 * except that the whole context — every certificate of it, RSA and ECDSA — is chosen before
 * OpenSSL starts (client-hello.ts says why).
 */
import type { Socket } from 'node:net';
import { type SecureContext, TLSSocket } from 'node:tls';
import { scanClientHello } from './client-hello.js';

export interface TlsAcceptor {
  /**
   * Whether the context depends on the name the client asks for; when it does not (one
   * certificate), the ClientHello is not read first and OpenSSL starts on the socket at once.
   */
  choosesBySni(): boolean;
  /** The context for a ClientHello asking for `servername` (undefined: no SNI); read per connection. */
  contextFor(servername: string | undefined): SecureContext;
  /** ALPN protocols in wire format (length-prefixed). */
  readonly alpn: Buffer;
  /** Time from the first byte to the end of the handshake (ms). */
  readonly handshakeTimeoutMs: number;
  /** The handshake is done: the connection speaks HTTP from here (`raw` is the TCP socket under it). */
  onSecure(socket: TLSSocket, raw: Socket): void;
  /** The handshake failed or timed out (the socket is destroyed): counted, never thrown. */
  onHandshakeError(err: Error): void;
}

/** ['http/1.1'] → `\x08http/1.1`: what OpenSSL takes. */
export function alpnWireFormat(protocols: readonly string[]): Buffer {
  return Buffer.concat(protocols.map((p) => Buffer.concat([Buffer.from([Buffer.byteLength(p)]), Buffer.from(p, 'latin1')])));
}

class HandshakeTimeout extends Error {
  readonly code = 'ERR_TLS_HANDSHAKE_TIMEOUT';
}

/** Takes over `raw` (a fresh connection); calls `acceptor.onSecure` or `onHandshakeError` once. */
export function acceptTls(raw: Socket, acceptor: TlsAcceptor): void {
  if (!acceptor.choosesBySni()) {
    handshake(raw, acceptor, undefined);
    return;
  }
  let received: Buffer | undefined;
  const fail = (err: Error) => {
    raw.destroy();
    acceptor.onHandshakeError(err);
  };
  const onTimeout = () => fail(new HandshakeTimeout('the client sent no complete ClientHello in time'));
  const onError = (err: Error) => fail(err);
  const onEnd = () => fail(new Error('the client closed before its ClientHello'));
  const onData = (chunk: Buffer) => {
    received = received === undefined ? chunk : Buffer.concat([received, chunk]);
    const scan = scanClientHello(received);
    if (scan.state === 'more') return;
    raw.off('data', onData);
    raw.off('error', onError);
    raw.off('timeout', onTimeout);
    raw.off('end', onEnd);
    raw.setTimeout(0);
    raw.pause();
    // Put back what was read: the TLSSocket feeds it to OpenSSL before reading on (node's initRead).
    raw.unshift(received);
    handshake(raw, acceptor, scan.servername);
  };
  raw.setTimeout(acceptor.handshakeTimeoutMs, onTimeout);
  raw.on('timeout', onTimeout);
  raw.on('data', onData);
  raw.on('error', onError);
  raw.on('end', onEnd);
}

function handshake(raw: Socket, acceptor: TlsAcceptor, servername: string | undefined): void {
  let context: SecureContext;
  try {
    context = acceptor.contextFor(servername);
  } catch (err) {
    raw.destroy();
    acceptor.onHandshakeError(err as Error);
    return;
  }
  // handshakeTimeout is a TLSSocket option tls.Server itself passes; node's types leave it out.
  const options = { isServer: true, secureContext: context, ALPNProtocols: acceptor.alpn, handshakeTimeout: acceptor.handshakeTimeoutMs };
  const socket = new TLSSocket(raw, options as ConstructorParameters<typeof TLSSocket>[1]);
  let secure = false;
  const onError = (err: Error) => {
    socket.destroy();
    if (!secure) acceptor.onHandshakeError(err);
  };
  socket.on('error', onError);
  socket.once('secure', () => {
    secure = true;
    // What tls.Server does before 'secureConnection': node:http2 waits for a socket still marked
    // as connecting to finish, which a server-side socket made by hand never reports.
    (socket as TLSSocket & { secureConnecting: boolean }).secureConnecting = false;
    socket.off('error', onError);
    acceptor.onSecure(socket, raw);
  });
}
