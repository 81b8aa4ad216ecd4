/**
 * The client-facing HTTP/1.1 listener and its graceful stop: stop accepting, let requests in
 * flight finish (connections are closed as soon as they go idle), and after the grace period cut
 * whatever is left.
 *
 * Hostile clients cost little here: Node's parser (llhttp, strict: insecureHTTPParser stays off)
 * answers malformed and ambiguous requests with 400 and oversized headers with 431 before the
 * forwarder sees them; headers that trickle in (slowloris) are cut after headersTimeoutMs, whole
 * requests after requestTimeoutMs, idle keep-alive connections after keepAliveTimeoutMs.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AccessLog, type AccessLogTarget } from '../access-log/access-log.js';
import { LoadShedder } from '../resilience/load-shedder.js';
import type { Forwarder } from './forwarder.js';

export interface ProxyServerOptions {
  /** How long an idle client keep-alive connection stays open (ms). Default 60000. */
  keepAliveTimeoutMs?: number;
  /** Time allowed to receive a request's headers (ms). Default 10000. */
  headersTimeoutMs?: number;
  /** Time allowed to receive a whole request, body included (ms); 0: none. Default 300000. */
  requestTimeoutMs?: number;
  /** Largest request head (request line and headers) in bytes; larger ones get 431. Default 16384. */
  maxHeaderSize?: number;
  /** Requests in flight on this process past which new ones are shed with 503; 0: no cap. Default 10000. */
  maxConcurrentRequests?: number;
  /** Shed new requests while the event loop's p99 delay exceeds this (ms); 0: off. Default 0. */
  maxEventLoopDelayMs?: number;
  /** `off` (default), `stdout`, or a file to append JSON lines to, one per request. */
  accessLog?: AccessLogTarget;
}

export const PROXY_DEFAULTS = Object.freeze({
  keepAliveTimeoutMs: 60_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 300_000,
  maxHeaderSize: 16_384,
  maxConcurrentRequests: 10_000,
  maxEventLoopDelayMs: 0,
  accessLog: 'off',
});

export function createProxyServer(forwarder: Forwarder, options: ProxyServerOptions = {}): Server {
  const headersTimeout = options.headersTimeoutMs ?? PROXY_DEFAULTS.headersTimeoutMs;
  let requestTimeout = options.requestTimeoutMs ?? PROXY_DEFAULTS.requestTimeoutMs;
  // Node wants the whole-request limit to be at least the headers one.
  if (requestTimeout > 0 && requestTimeout < headersTimeout) requestTimeout = headersTimeout;
  const server = createServer(
    {
      keepAliveTimeout: options.keepAliveTimeoutMs ?? PROXY_DEFAULTS.keepAliveTimeoutMs,
      headersTimeout,
      requestTimeout,
      // How often Node looks for requests past those limits (its default, 30 s, lets slowloris linger).
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, headersTimeout / 2)),
      maxHeaderSize: options.maxHeaderSize ?? PROXY_DEFAULTS.maxHeaderSize,
      insecureHTTPParser: false,
      noDelay: true,
    },
    forwarder.handle,
  );
  const maxConcurrentRequests = options.maxConcurrentRequests ?? PROXY_DEFAULTS.maxConcurrentRequests;
  const maxEventLoopDelayMs = options.maxEventLoopDelayMs ?? PROXY_DEFAULTS.maxEventLoopDelayMs;
  if (maxConcurrentRequests > 0 || maxEventLoopDelayMs > 0) {
    const shedder = new LoadShedder({ maxConcurrentRequests, maxEventLoopDelayMs });
    forwarder.shedder = shedder;
    server.once('close', () => shedder.close());
  }
  const accessLog = AccessLog.open(options.accessLog ?? PROXY_DEFAULTS.accessLog);
  if (accessLog !== undefined) {
    forwarder.accessLog = accessLog;
    server.once('close', () => void accessLog.close());
  }
  return server;
}

export function listen(server: Server, host: string, port: number): Promise<AddressInfo> {
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
 * connections as they appear; after `graceMs` the remaining ones are destroyed. Resolves true if
 * everything finished within the grace period.
 */
export async function drainServer(server: Server, graceMs: number): Promise<boolean> {
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
    await closed;
  }
  return finished;
}
