/**
 * The fallback upstream client: an undici Pool behind the Upstream interface, for runtimes
 * without node's native parser (http1-parser.ts) and for `--upstream-client undici`. undici
 * hands response headers over as Buffers; they become latin1 strings here, as the built-in
 * client gives them.
 */
import { Pool, type Dispatcher } from 'undici';
import { UPSTREAM_ERRORS, UpstreamError } from '../errors.js';
import { splitAddress, type Http1PoolOptions } from './http1-pool.js';
import { TunnelSet, type TunnelHandler } from './tunnel.js';
import type { Upstream, UpstreamHandler, UpstreamRequest } from './upstream.js';

class HandlerAdapter implements Dispatcher.DispatchHandler {
  constructor(private readonly handler: UpstreamHandler) {}

  onConnect(abort: (err?: Error) => void): void {
    this.handler.onConnect(abort);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    // 1xx heads are the client's business; the built-in client does not pass them on either.
    if (statusCode < 200) return true;
    const headers = new Array<string>(rawHeaders.length);
    for (let i = 0; i < rawHeaders.length; i++) headers[i] = rawHeaders[i]!.toString('latin1');
    return this.handler.onHeaders(statusCode, headers, resume, statusText);
  }

  onData(chunk: Buffer): boolean {
    return this.handler.onData(chunk);
  }

  onComplete(): void {
    this.handler.onComplete();
  }

  onError(err: Error): void {
    this.handler.onError(err);
  }
}

export class UndiciUpstream implements Upstream {
  private readonly pool: Pool;
  /** Upgraded connections are the built-in tunnel's (upstream/tunnel.ts), whichever client pools the requests. */
  private readonly tunnels = new TunnelSet();
  private readonly address: string;
  private readonly options: Http1PoolOptions;
  private closing = false;

  constructor(address: string, options: Http1PoolOptions) {
    this.address = address;
    this.options = options;
    const tls = options.tls;
    const pool = new Pool(`${tls === undefined ? 'http' : 'https'}://${address}`, {
      connectTimeout: options.connectTimeoutMs,
      headersTimeout: options.headersTimeoutMs,
      bodyTimeout: options.bodyTimeoutMs,
      keepAliveTimeout: options.keepAliveTimeoutMs,
      keepAliveMaxTimeout: Math.max(options.keepAliveTimeoutMs, 600_000),
      pipelining: 1,
      ...(options.connections !== undefined ? { connections: options.connections } : {}),
      // undici hands these to tls.connect as they are.
      ...(tls !== undefined
        ? { connect: { secureContext: tls.context, rejectUnauthorized: tls.verify, ...(tls.servername !== undefined ? { servername: tls.servername } : {}) } }
        : {}),
    });
    // Connection failures reach the request's handler; an 'error' event must not crash the process.
    pool.on('connectionError', () => {});
    this.pool = pool;
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler): void {
    this.pool.dispatch(
      {
        path: request.path,
        method: request.method as Dispatcher.HttpMethod,
        headers: request.headers as string[],
        body: request.body,
        headersTimeout: request.headersTimeout,
        bodyTimeout: request.bodyTimeout,
      },
      new HandlerAdapter(handler),
    );
  }

  get openConnections(): number {
    return this.pool.stats.connected;
  }

  tunnel(request: UpstreamRequest, handler: TunnelHandler): void {
    if (this.closing) {
      handler.onError(new UpstreamError(UPSTREAM_ERRORS.POOL_CLOSED, 'the upstream pool is closed'));
      return;
    }
    const { host, port } = splitAddress(this.address);
    const { connectTimeoutMs, headersTimeoutMs, tls } = this.options;
    this.tunnels.open({ host, port, connectTimeoutMs, headersTimeoutMs, tls }, request, handler);
  }

  close(): Promise<void> {
    this.closing = true;
    return Promise.all([this.pool.close().catch(() => {}), this.tunnels.closed()]).then(() => {});
  }

  destroy(): Promise<void> {
    this.closing = true;
    this.tunnels.destroyAll();
    return this.pool.destroy().catch(() => {});
  }
}
