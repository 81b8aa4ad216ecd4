/**
 * The client-facing HTTP/1.1 listener and its graceful stop: stop accepting, let requests in
 * flight finish (connections are closed as soon as they go idle), and after the grace period cut
 * whatever is left.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Forwarder } from './forwarder.js';

export interface ProxyServerOptions {
  /** How long an idle client keep-alive connection stays open (ms). Default 60000. */
  keepAliveTimeoutMs?: number;
  /** Time allowed to receive a request's headers (ms). Default 30000. */
  headersTimeoutMs?: number;
}

export function createProxyServer(forwarder: Forwarder, options: ProxyServerOptions = {}): Server {
  const server = createServer(
    {
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 60_000,
      headersTimeout: options.headersTimeoutMs ?? 30_000,
      // Uploads may take long; body progress is bounded by the upstream's own timeouts instead.
      requestTimeout: 0,
      noDelay: true,
    },
    forwarder.handle,
  );
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
