/**
 * Upgraded connections to a backend (WebSocket): a connection of its own per tunnel, never a
 * pooled one, opened with the client's upgrade request. The backend's answer head is read with
 * the same parser as every response (http1/llhttp.ts), and stops there on `101 Switching
 * Protocols`: the socket, and whatever bytes came after the head, then belong to the caller,
 * which pipes them to the client. Any other answer is an ordinary response, relayed through the
 * same handler events as a pooled request, after which the connection closes.
 *
 * A pool whose backends speak TLS (its `tls`) gets its tunnels over TLS too, verified the same way
 * as its requests (ALPN http/1.1: a WebSocket upgrade is HTTP/1.1's); the connect deadline covers
 * the handshake.
 *
 * A pool keeps its tunnels in a TunnelSet, so that closing the pool (a backend drained or
 * removed, the node draining) waits for them and destroying it cuts them, like its requests.
 */
import type { Socket } from 'node:net';
import tls from 'node:tls';
import { AFTER_HEAD, Http1Parser, type Http1Events } from '../http1/llhttp.js';
import { tlsHandshakeError, UPSTREAM_ERRORS, UpstreamError } from '../errors.js';
import { connectPlain } from '../runtime/plain-connect.js';
import { http1TlsConnectOptions, type UpstreamTls } from '../tls/upstream-tls.js';
import type { UpstreamRequest } from './upstream.js';

export interface TunnelHandler {
  /** The connection is being made; `abort` ends it (onError follows unless it was upgraded). */
  onConnect(abort: (err?: Error) => void): void;
  /**
   * The backend switched protocols. From now on `socket` is the caller's (it must destroy it in the
   * end); `head` holds the bytes the backend sent after its 101 head.
   */
  onUpgrade(statusText: string, headers: readonly string[], socket: Socket, head: Buffer): void;
  /** Not a switch: an ordinary response head; onData and onComplete (or onError) follow. */
  onHeaders(statusCode: number, headers: readonly string[], statusText: string): void;
  onData(chunk: Buffer): void;
  onComplete(): void;
  /** Failed before an upgrade (connect, timeout, a broken answer); nothing else follows. */
  onError(err: Error): void;
}

export interface TunnelSettings {
  readonly host: string;
  readonly port: number;
  readonly connectTimeoutMs: number;
  /** Time allowed for the backend's answer head once connected (ms); 0: none. */
  readonly headersTimeoutMs: number;
  /** The pool's TLS to its backends; undefined: plain TCP. */
  readonly tls: UpstreamTls | undefined;
}

/** Tunnels of one pool: each is counted until its socket closes. */
export class TunnelSet {
  private readonly sockets = new Set<Socket>();
  private whenEmpty: (() => void) | undefined;

  get size(): number {
    return this.sockets.size;
  }

  /** Opens a tunnel to `settings`' backend; the set counts it until its socket closes. */
  open(settings: TunnelSettings, request: UpstreamRequest, handler: TunnelHandler): void {
    const socket = openTunnel(settings, request, handler);
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      if (this.sockets.size === 0) this.whenEmpty?.();
    });
  }

  /** Resolves once every tunnel has closed. */
  closed(): Promise<void> {
    if (this.sockets.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const previous = this.whenEmpty;
      this.whenEmpty = () => {
        previous?.();
        resolve();
      };
    });
  }

  /** Cuts every tunnel now. */
  destroyAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }
}

const WAITING = 0;
/** An ordinary answer is being relayed. */
const RELAYING = 1;
/** Upgraded, failed or complete: nothing more is reported. */
const DONE = 2;

/** A plain connection to the backend, or a TLS one made as the pool's requests make theirs. */
function connect(settings: TunnelSettings): Socket {
  const secure = settings.tls;
  if (secure === undefined) return connectPlain({ host: settings.host, port: settings.port });
  const socket = tls.connect(http1TlsConnectOptions(secure, settings.host, settings.port));
  socket.setNoDelay(true);
  return socket;
}

/** Writes the upgrade request and reads the answer head; returns the socket (destroyed here on failure or after an ordinary answer). */
function openTunnel(settings: TunnelSettings, request: UpstreamRequest, handler: TunnelHandler): Socket {
  let state = WAITING;
  /** TCP is connected and the TLS handshake not done yet. */
  let handshaking = false;
  let timer: NodeJS.Timeout | undefined;
  let switched: { statusText: string; headers: string[] } | undefined;
  const socket = connect(settings);
  const parser = new Http1Parser('response', {
    onMessageBegin() {},
    onHead(_major, _minor, headers, _method, _url, status, statusText) {
      if (status === 101) {
        switched = { statusText, headers };
        return AFTER_HEAD.STOP;
      }
      if (status < 200) return AFTER_HEAD.NO_BODY; // an interim answer: the final one follows
      clearTimeout(timer);
      state = RELAYING;
      handler.onHeaders(status, headers, statusText);
      return request.method === 'HEAD' ? AFTER_HEAD.NO_BODY : AFTER_HEAD.BODY;
    },
    onBody(chunk) {
      if (state === RELAYING) handler.onData(chunk);
    },
    onMessageComplete() {
      if (state !== RELAYING) return;
      end();
      socket.destroy();
      handler.onComplete();
    },
  });
  const end = (): void => {
    state = DONE;
    clearTimeout(timer);
    parser.close();
  };
  const fail = (err: Error): void => {
    if (state === DONE) return;
    end();
    socket.destroy();
    handler.onError(err);
  };
  const arm = (ms: number, code: typeof UPSTREAM_ERRORS.CONNECT_TIMEOUT | typeof UPSTREAM_ERRORS.HEADERS_TIMEOUT, what: string): void => {
    clearTimeout(timer);
    if (ms > 0) timer = setTimeout(() => fail(new UpstreamError(code, `timed out ${what}`)), ms);
  };
  arm(settings.connectTimeoutMs, UPSTREAM_ERRORS.CONNECT_TIMEOUT, 'connecting');
  handler.onConnect((err) => fail(err ?? new UpstreamError(UPSTREAM_ERRORS.CLIENT_ABORTED, 'tunnel abandoned')));
  socket.on(settings.tls === undefined ? 'connect' : 'secureConnect', () => {
    handshaking = false;
    arm(request.headersTimeout ?? settings.headersTimeoutMs, UPSTREAM_ERRORS.HEADERS_TIMEOUT, 'waiting for the upgrade answer');
    let head = `${request.method} ${request.path} HTTP/1.1\r\n`;
    const h = request.headers;
    for (let i = 0; i < h.length; i += 2) head += `${h[i]}: ${h[i + 1]}\r\n`;
    socket.write(`${head}\r\n`, 'latin1');
  });
  const onData = (data: Buffer): void => {
    if (state === DONE) return;
    const r = parser.execute(data);
    if (typeof r !== 'number') return fail(r);
    if (switched === undefined) return;
    end();
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.pause();
    handler.onUpgrade(switched.statusText, switched.headers, socket, Buffer.from(data.subarray(r)));
  };
  const onEnd = (): void => {
    if (state === DONE) return;
    // An answer delimited by the close ends here.
    if (state === RELAYING && parser.finish() === undefined) return;
    fail(new UpstreamError(UPSTREAM_ERRORS.CLOSED, 'the backend closed the connection before its answer ended'));
  };
  socket.on('data', onData);
  socket.on('end', onEnd);
  if (settings.tls !== undefined) socket.once('connect', () => (handshaking = true));
  socket.on('error', (err: Error) => fail(handshaking ? tlsHandshakeError(err) : err));
  socket.on('close', () => fail(new UpstreamError(UPSTREAM_ERRORS.CLOSED, 'the backend closed the connection')));
  return socket;
}
