/**
 * The client-facing HTTP/1.1 listener and its graceful stop: stop accepting, let requests in
 * flight finish (connections are closed as soon as they go idle), and after the grace period cut
 * whatever is left.
 *
 * Two servers can run it: the built-in one (http1-server.ts, the default) and node:http
 * (`--http-server node`). Both parse with node's llhttp in strict mode, so hostile clients cost
 * little either way: malformed and ambiguous requests get 400 and oversized heads 431 before the
 * forwarder sees them; headers that trickle in (slowloris) are cut after headersTimeoutMs, whole
 * requests after requestTimeoutMs, idle keep-alive connections after keepAliveTimeoutMs.
 */
import type { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { nativeHttp1 } from '../http1/parser-self-test.js';
import type { TcpIo } from '../runtime/raw-tcp-self-test.js';
import { type Http2Handoff, Http1Server, type TlsTransport } from '../server/http1-server.js';
import { HTTP2_SERVER_DEFAULTS, Http2Sessions } from '../server/http2-server.js';
import { upgradeResponse } from '../server/upgrade-exchange.js';
import type { RequestListener } from './exchange.js';
import { AccessLog, type AccessLogTarget } from '../access-log/access-log.js';
import { LoadShedder } from '../resilience/load-shedder.js';
import { DEFAULT_MAX_HEADERS, type Forwarder } from './forwarder.js';
import type { UnderscoreHeaders } from './hop-by-hop.js';

export interface ProxyServerOptions {
  /** How long an idle client keep-alive connection stays open (ms). Default 60000. */
  keepAliveTimeoutMs?: number;
  /** Time allowed to receive a request's headers (ms). Default 10000. */
  headersTimeoutMs?: number;
  /** Time allowed to receive a whole request, body included (ms); 0: none. Default 300000. */
  requestTimeoutMs?: number;
  /** An HTTP/2 connection silent this long gets a PING and is closed if it does not answer within as long again (ms); 0: never. Default 20000. */
  http2PingIntervalMs?: number;
  /** Largest request head (request line and headers) in bytes; larger ones get 431. Default 16384. */
  maxHeaderSize?: number;
  /** Most header fields in a request; more get 431. Default 100 (forwarder.ts). */
  maxHeaders?: number;
  /** Request header names with `_`: `drop` (default) or `allow` (hop-by-hop.ts). */
  underscoreHeaders?: UnderscoreHeaders;
  /** Pools with more backends export pool-level metrics only. Default 100 (metrics.ts). */
  metricsBackendLimit?: number;
  /** Requests in flight on this process past which new ones are shed with 503; 0: no cap. Default 10000. */
  maxConcurrentRequests?: number;
  /** Shed new requests while the event loop's p99 delay exceeds this (ms); 0: off. Default 0. */
  maxEventLoopDelayMs?: number;
  /** `off` (default), `stdout`, or a file to append JSON lines to, one per request. */
  accessLog?: AccessLogTarget;
  /** Which server parses client requests. Default DEFAULT_HTTP_SERVER. */
  server?: HttpServerKind;
  /** How tcp and tls-passthrough listeners move bytes. Default DEFAULT_TCP_IO (runtime/raw-tcp-self-test.ts). */
  l4Io?: TcpIo;
  /** How the built-in server's plain HTTP/1.1 connections move bytes (not TLS, not h2c). Default DEFAULT_TCP_IO. */
  httpIo?: TcpIo;
}

export const HTTP_SERVERS = ['native', 'node'] as const;
export type HttpServerKind = (typeof HTTP_SERVERS)[number];
/** The built-in server where node's parser passed its self-test, node:http elsewhere. */
export const DEFAULT_HTTP_SERVER: HttpServerKind = nativeHttp1().ok ? 'native' : 'node';

/** What the data plane needs of a client-side server; node:http's Server and Http1Server both are one. */
export interface ProxyListener extends EventEmitter {
  readonly listening: boolean;
  listen(port: number, host: string, callback?: () => void): this;
  address(): AddressInfo | string | null;
  close(callback?: (err?: Error) => void): this;
  closeIdleConnections(): void;
  closeAllConnections(): void;
}

export const PROXY_DEFAULTS = Object.freeze({
  keepAliveTimeoutMs: 60_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 300_000,
  http2PingIntervalMs: 20_000,
  maxHeaderSize: 16_384,
  maxHeaders: DEFAULT_MAX_HEADERS,
  underscoreHeaders: 'drop' as UnderscoreHeaders,
  maxConcurrentRequests: 10_000,
  maxEventLoopDelayMs: 0,
  accessLog: 'off',
});

const CLIENT_ERROR_RESPONSES: Record<string, string> = {
  HPE_HEADER_OVERFLOW: 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 'HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\n\r\n',
  ERR_HTTP_REQUEST_TIMEOUT: 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n',
};

/**
 * node:http's handling of a client's parse error, as its default does it, but for one case: bytes
 * after a request that asked to close are ignored and the request before them still answered
 * (the built-in server and nginx do the same), instead of turning both into a 400.
 */
function onClientError(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'HPE_CLOSED_CONNECTION') return;
  // Not in the middle of a response: an error line must never corrupt one.
  const current = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  if (socket.writable && current?.headersSent !== true)
    socket.write(CLIENT_ERROR_RESPONSES[err.code ?? ''] ?? 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
  socket.destroy(err);
}

/**
 * What every listener of a process shares: node-wide shedding (one event-loop monitor, one
 * concurrency cap) and the access log (one writer). Made once per process, given to each
 * listener's forwarder, closed when the process drains.
 */
export interface RequestGuards {
  readonly shedder: LoadShedder | undefined;
  readonly accessLog: AccessLog | undefined;
  close(): Promise<void>;
}

export function createRequestGuards(options: ProxyServerOptions = {}): RequestGuards {
  const maxConcurrentRequests = options.maxConcurrentRequests ?? PROXY_DEFAULTS.maxConcurrentRequests;
  const maxEventLoopDelayMs = options.maxEventLoopDelayMs ?? PROXY_DEFAULTS.maxEventLoopDelayMs;
  const shedder = maxConcurrentRequests > 0 || maxEventLoopDelayMs > 0 ? new LoadShedder({ maxConcurrentRequests, maxEventLoopDelayMs }) : undefined;
  const accessLog = AccessLog.open(options.accessLog ?? PROXY_DEFAULTS.accessLog);
  return {
    shedder,
    accessLog,
    async close() {
      shedder?.close();
      await accessLog?.close();
    },
  };
}

/** HTTP/2 on a listener: over TLS when ALPN offers `h2`; on plain HTTP with prior knowledge when `h2c`. */
export interface ListenerHttp2 {
  readonly h2: boolean;
  readonly h2c: boolean;
}

/**
 * A client listener running `forwarder`: the built-in server or node:http (options.server), or
 * with a TLS transport the built-in server over TLS — HTTPS never falls back to node:http. HTTP/2
 * (`http2`) runs beside the built-in server only, so it is chosen whenever HTTP/2 is on.
 */
export function createProxyServer(forwarder: Forwarder, options: ProxyServerOptions = {}, transport?: TlsTransport, http2?: ListenerHttp2): ProxyListener {
  const headersTimeout = options.headersTimeoutMs ?? PROXY_DEFAULTS.headersTimeoutMs;
  let requestTimeout = options.requestTimeoutMs ?? PROXY_DEFAULTS.requestTimeoutMs;
  // Node wants the whole-request limit to be at least the headers one.
  if (requestTimeout > 0 && requestTimeout < headersTimeout) requestTimeout = headersTimeout;
  const keepAliveTimeout = options.keepAliveTimeoutMs ?? PROXY_DEFAULTS.keepAliveTimeoutMs;
  const maxHeaderSize = options.maxHeaderSize ?? PROXY_DEFAULTS.maxHeaderSize;
  // How often expired requests are looked for (node's default, 30 s, lets slowloris linger).
  const checkIntervalMs = Math.max(100, Math.min(1_000, headersTimeout / 2));
  const wantsHttp2 = http2 !== undefined && ((transport !== undefined && http2.h2) || (transport === undefined && http2.h2c));
  const kind = transport !== undefined || wantsHttp2 ? 'native' : (options.server ?? DEFAULT_HTTP_SERVER);
  const native = nativeHttp1();
  if (kind === 'native' && !native.ok) {
    const instead = transport !== undefined || wantsHttp2 ? 'HTTPS and HTTP/2 listeners run only on the built-in server' : 'use --http-server node';
    throw new Error(`the native http server needs node's HTTP parser (${native.reason}); ${instead}`);
  }
  const server: ProxyListener =
    kind === 'native'
      ? new Http1Server(
          { maxHeaderSize, headersTimeoutMs: headersTimeout, requestTimeoutMs: requestTimeout, keepAliveTimeoutMs: keepAliveTimeout },
          forwarder.handle,
          checkIntervalMs,
          {
            transport,
            http2: wantsHttp2
              ? http2Handoff(forwarder, options, keepAliveTimeout, requestTimeout, maxHeaderSize, http2!.h2c && transport === undefined)
              : undefined,
            io: options.httpIo,
          },
        )
      : createServer(
          {
            keepAliveTimeout,
            headersTimeout,
            requestTimeout,
            connectionsCheckingInterval: checkIntervalMs,
            maxHeaderSize,
            insecureHTTPParser: false,
            noDelay: true,
          },
          forwarder.handle as RequestListener as Parameters<typeof createServer>[1],
        )
          .on('clientError', onClientError)
          // node:http hands an upgrade request over with its socket; the forwarder answers it the
          // same way as the built-in server's (server/upgrade-exchange.ts).
          .on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => forwarder.handle(req, upgradeResponse(req, socket, head)));
  return server;
}

function http2Handoff(
  forwarder: Forwarder,
  options: ProxyServerOptions,
  idleTimeoutMs: number,
  streamIdleTimeoutMs: number,
  maxHeaderSize: number,
  h2c: boolean,
): Http2Handoff {
  const maxHeaders = options.maxHeaders ?? PROXY_DEFAULTS.maxHeaders;
  const sessions = new Http2Sessions(
    {
      ...HTTP2_SERVER_DEFAULTS,
      maxHeaderListSize: maxHeaderSize,
      // Pseudo-headers count too; past maxHeaders the forwarder answers 431 itself.
      maxHeaderListPairs: maxHeaders + 8,
      idleTimeoutMs,
      // A stream is not a connection: what bounds a whole HTTP/1.1 request bounds a stream's silence.
      streamIdleTimeoutMs,
      pingIntervalMs: options.http2PingIntervalMs ?? PROXY_DEFAULTS.http2PingIntervalMs,
    },
    forwarder.handle,
  );
  return { sessions, h2c };
}

export function listen(server: ProxyListener, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

/**
 * Stops accepting and waits until every connection has closed, closing idle keep-alive
 * connections as they appear; after `graceMs` the remaining ones are destroyed, `tunnels` (the
 * WebSocket tunnels, whose client sockets the HTTP server no longer holds) closed too. Resolves
 * true if everything finished within the grace period.
 */
export async function drainServer(server: ProxyListener, graceMs: number, tunnels?: { closeAll(): void }): Promise<boolean> {
  if (!server.listening) return true;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // A keep-alive connection whose last response just finished is idle: close it now instead of
  // waiting out its keep-alive timeout.
  const sweep = setInterval(() => server.closeIdleConnections(), 100);
  server.closeIdleConnections();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), graceMs);
  });
  const finished = await Promise.race([closed.then(() => true), timedOut]);
  clearInterval(sweep);
  clearTimeout(timer);
  if (!finished) {
    server.closeAllConnections();
    tunnels?.closeAll();
    await closed;
  }
  return finished;
}
