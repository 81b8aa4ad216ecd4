/**
 * The built-in client-facing HTTP/1.1 server: a `net` server whose connections
 * (http1-server-connection.ts) parse with node's native llhttp and answer through the
 * ProxyRequest/ProxyResponse pair (client-exchange.ts). It does what node:http's server does for
 * the proxy — the same strict parser, the same limits and timeouts, keep-alive, pipelining,
 * graceful close — without IncomingMessage and ServerResponse, which cost about a quarter of a
 * proxied request's CPU (bench/README.md). `--http-server node` runs node:http instead.
 *
 * Its surface is the part of node:http's Server that proxy-server.ts uses: listen, address,
 * close (net's: 'close' once every connection has ended), closeIdleConnections,
 * closeAllConnections.
 *
 * With a TLS transport each connection first goes through the TLS acceptor (tls/tls-acceptor.ts)
 * and is handed over once its handshake is done: a TLSSocket is a Socket, so the same connection
 * code serves HTTPS. The acceptor asks for a context per connection, so a certificate replaced
 * while the server runs applies to the next handshake, and connections already open keep theirs.
 *
 * HTTP/2 shares the port (Http2Handoff): a TLS connection that agreed on `h2`, or with h2c a plain
 * one that opens with the HTTP/2 preface, is handed to the listener's HTTP/2 sessions
 * (http2-server.ts); closing the server sends those GOAWAY.
 */
import { EventEmitter } from 'node:events';
import type { AddressInfo, Server, Socket } from 'node:net';
import { createListenerServer } from '../runtime/accepted-sockets.js';
import { RawTcp } from '../runtime/raw-tcp.js';
import { DEFAULT_TCP_IO, type TcpIo } from '../runtime/raw-tcp-self-test.js';
import { SocketEnd } from '../runtime/socket-end.js';
import { acceptTls, type TlsAcceptor } from '../tls/tls-acceptor.js';
import type { RequestListener } from '../proxy/exchange.js';
import { ServerConnection, type ConnectionServer, type ServerConnectionSettings } from './http1-server-connection.js';
import type { Http2Sessions } from './http2-server.js';
import { sniffPreface } from './preface-sniff.js';

/** Serve HTTPS: how each connection's handshake goes (the acceptor's connection-independent part). */
export type TlsTransport = Omit<TlsAcceptor, 'onSecure' | 'handshakeTimeoutMs'>;

/**
 * HTTP/2 beside HTTP/1.1 on the same port: TLS connections that agreed on ALPN `h2` go to
 * `sessions`, and with `h2c` plain connections that open with the HTTP/2 preface too.
 */
export interface Http2Handoff {
  readonly sessions: Http2Sessions;
  readonly h2c: boolean;
}

export interface Http1ServerOptions {
  /** Serve HTTPS. */
  readonly transport?: TlsTransport | undefined;
  /** HTTP/2 on the same port. */
  readonly http2?: Http2Handoff | undefined;
  /**
   * How a plain listener's connections move bytes: libuv handles driven directly (raw-tcp.ts), or
   * net.Socket. TLS and h2c listeners use net.Socket either way. Default DEFAULT_TCP_IO.
   */
  readonly io?: TcpIo | undefined;
}

export class Http1Server extends EventEmitter implements ConnectionServer {
  private readonly server: Server;
  /** TLS connections whose handshake is not done: no request yet, so closing them loses nothing. */
  private readonly handshaking = new Set<Socket>();
  private readonly connections = new Set<ServerConnection>();
  /** Sockets connections gave away (upgrades), until they close: a drain past its grace cuts them too. */
  private readonly handedOffSockets = new Set<Socket>();
  private timer: NodeJS.Timeout | undefined;
  /** close() was called and net's server has closed: 'close' waits for our own connections too. */
  private listenerClosed = false;
  private readonly closeCallbacks: ((err?: Error) => void)[] = [];
  private readonly http2: Http2Handoff | undefined;
  closing = false;
  now = performance.now();
  readonly keepAliveHeader: string;

  constructor(
    readonly settings: ServerConnectionSettings,
    readonly listener: RequestListener,
    /** How often timeouts are checked (ms); node:http's connectionsCheckingInterval. */
    private readonly checkIntervalMs: number,
    options: Http1ServerOptions = {},
  ) {
    super();
    const { transport, http2 } = options;
    this.http2 = http2;
    const idleSeconds = Math.floor(settings.keepAliveTimeoutMs / 1000);
    this.keepAliveHeader = idleSeconds > 0 ? `Keep-Alive: timeout=${idleSeconds}\r\n` : '';
    if (transport === undefined && http2?.h2c === true) {
      // Until its first bytes tell, a connection is neither: like a handshake, it holds no request.
      const h2 = http2.sessions;
      this.server = createListenerServer((raw) => {
        this.handshaking.add(raw);
        raw.once('close', () => this.handshaking.delete(raw));
        sniffPreface(raw, settings.headersTimeoutMs, (socket, isHttp2) => {
          this.handshaking.delete(socket);
          if (isHttp2) h2.accept(socket);
          else {
            this.onConnection(socket);
            socket.resume();
          }
        });
      });
    } else if (transport === undefined) {
      // Accepted as handles (no net.Socket) where they are used; net's close() does not count
      // those, so close() waits for them itself (closedIfDone()).
      const handles = (options.io ?? DEFAULT_TCP_IO) === 'handles';
      this.server = createListenerServer((socket) => this.onConnection(socket), handles ? this.onHandle : undefined);
    } else {
      // A handshake is held to the same limit as a request head: a client that stalls it is cut.
      const acceptor: TlsAcceptor = {
        choosesBySni: () => transport.choosesBySni(),
        contextFor: (servername) => transport.contextFor(servername),
        alpn: transport.alpn,
        handshakeTimeoutMs: settings.headersTimeoutMs,
        onSecure: (socket, raw) => {
          this.handshaking.delete(raw);
          if (socket.destroyed) return;
          if (socket.alpnProtocol === 'h2' && this.http2 !== undefined) this.http2.sessions.accept(socket);
          else this.onConnection(socket);
        },
        onHandshakeError: (err) => transport.onHandshakeError(err),
      };
      this.server = createListenerServer((raw) => {
        this.handshaking.add(raw);
        raw.once('close', () => this.handshaking.delete(raw));
        acceptTls(raw, acceptor);
      });
    }
    this.server.on('error', (err) => this.emit('error', err));
  }

  get listening(): boolean {
    return this.server.listening;
  }

  private onConnection(socket: Socket): void {
    this.now = performance.now();
    this.connections.add(new ServerConnection(SocketEnd.sharing(socket), this));
  }

  private readonly onHandle = (handle: unknown): void => {
    this.now = performance.now();
    this.connections.add(new ServerConnection(RawTcp.accepted(handle, { sharedReads: true }), this));
  };

  removed(conn: ServerConnection): void {
    this.connections.delete(conn);
    this.closedIfDone();
  }

  handedOff(conn: ServerConnection, socket: Socket): void {
    this.connections.delete(conn);
    this.handedOffSockets.add(socket);
    socket.once('close', () => {
      this.handedOffSockets.delete(socket);
      this.closedIfDone();
    });
  }

  private readonly tick = (): void => {
    const now = performance.now();
    this.now = now;
    for (const conn of this.connections) conn.expire(now);
  };

  listen(port: number, host: string, callback?: () => void): this {
    this.server.listen(port, host, () => {
      this.timer ??= setInterval(this.tick, this.checkIntervalMs).unref();
      callback?.();
    });
    return this;
  }

  address(): AddressInfo | string | null {
    return this.server.address();
  }

  /** Stops accepting; `callback` (and 'close') once every connection has ended. */
  close(callback?: (err?: Error) => void): this {
    this.closing = true;
    for (const conn of this.connections) conn.stopKeepAlive();
    this.http2?.sessions.close();
    this.server.close((err) => {
      // Not listening: the error is the caller's at once, as net's is.
      if (err !== undefined) return callback?.(err);
      if (callback !== undefined) this.closeCallbacks.push(callback);
      this.listenerClosed = true;
      this.closedIfDone();
    });
    return this;
  }

  /**
   * net's close() waits for the sockets it counts; connections on handles, and the sockets made of
   * them for upgrades, it does not see: the server is closed once those are gone too.
   */
  private closedIfDone(): void {
    if (!this.listenerClosed || this.connections.size > 0 || this.handedOffSockets.size > 0) return;
    this.listenerClosed = false;
    clearInterval(this.timer);
    this.timer = undefined;
    for (const callback of this.closeCallbacks.splice(0)) callback();
    this.emit('close');
  }

  closeIdleConnections(): void {
    for (const conn of this.connections) if (conn.idle) conn.destroy();
    for (const raw of this.handshaking) raw.destroy();
    this.http2?.sessions.closeIdle();
  }

  closeAllConnections(): void {
    for (const conn of this.connections) conn.destroy();
    for (const socket of this.handedOffSockets) socket.destroy();
    for (const raw of this.handshaking) raw.destroy();
    this.http2?.sessions.closeAll();
  }
}
