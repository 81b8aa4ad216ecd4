/**
 * The built-in upstream client: a pool of keep-alive HTTP/1.1 connections (http1-connection.ts)
 * to one backend address. An idle connection is reused newest first, so a quiet period lets the
 * oldest ones expire; beyond `connections` requests wait in order. close() is graceful — queued
 * and in-flight requests finish, idle connections close at once — which is what draining and
 * removed backends rely on; destroy() cuts everything.
 */
import { unwatch, watch, type Sweepable } from './connection-sweeper.js';
import { Http1Connection, type ConnectionOwner, type ConnectionSettings } from './http1-connection.js';
import { UPSTREAM_ERRORS, UpstreamError } from '../errors.js';
import { TunnelSet, type TunnelHandler } from './tunnel.js';
import type { Upstream, UpstreamHandler, UpstreamRequest } from './upstream.js';
import type { UpstreamTls } from '../tls/upstream-tls.js';

export interface Http1PoolOptions {
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** Most connections at once; absent: no limit. */
  connections?: number | undefined;
  /** TLS to the backend; absent: plain HTTP. */
  tls?: UpstreamTls | undefined;
  /** Plain connections to IP addresses on libuv handles (http1-connection.ts). Default true. */
  rawHandles?: boolean | undefined;
}

interface Waiting {
  readonly request: UpstreamRequest;
  readonly handler: UpstreamHandler;
}

/** `host:port` or `[v6]:port`. */
export function splitAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  let host = address.slice(0, colon);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host, port: Number(address.slice(colon + 1)) };
}

export class Http1Pool implements Upstream, ConnectionOwner, Sweepable {
  private readonly settings: ConnectionSettings;
  private readonly limit: number;
  private readonly all = new Set<Http1Connection>();
  /** Idle connections, most recently used last. */
  private readonly idle: Http1Connection[] = [];
  private waiting: Waiting[] = [];
  private waitingHead = 0;
  private closing = false;
  private readonly tunnels = new TunnelSet();
  private whenClosed: (() => void) | undefined;
  private closedPromise: Promise<void> | undefined;
  /** The newest TLS session a backend gave: new connections resume it (an abbreviated handshake). */
  tlsSession: Buffer | undefined;

  constructor(address: string, options: Http1PoolOptions) {
    const { host, port } = splitAddress(address);
    this.settings = {
      host,
      port,
      connectTimeoutMs: options.connectTimeoutMs,
      headersTimeoutMs: options.headersTimeoutMs,
      bodyTimeoutMs: options.bodyTimeoutMs,
      keepAliveTimeoutMs: options.keepAliveTimeoutMs,
      tls: options.tls,
      rawHandles: options.rawHandles,
    };
    this.limit = options.connections ?? Number.POSITIVE_INFINITY;
  }

  get openConnections(): number {
    return this.all.size;
  }

  /** Connections open (or opening), and those idle: for tests and diagnostics. */
  get stats(): { connections: number; idle: number; waiting: number } {
    return { connections: this.all.size, idle: this.idle.length, waiting: this.waiting.length - this.waitingHead };
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler): void {
    if (this.closing) {
      handler.onError(new UpstreamError(UPSTREAM_ERRORS.POOL_CLOSED, 'the upstream pool is closed'));
      return;
    }
    const conn = this.idle.pop();
    if (conn !== undefined) conn.send(request, handler);
    else if (this.all.size < this.limit) this.open(request, handler);
    else this.waiting.push({ request, handler });
  }

  tunnel(request: UpstreamRequest, handler: TunnelHandler): void {
    if (this.closing) {
      handler.onError(new UpstreamError(UPSTREAM_ERRORS.POOL_CLOSED, 'the upstream pool is closed'));
      return;
    }
    const { host, port, connectTimeoutMs, headersTimeoutMs, tls } = this.settings;
    this.tunnels.open({ host, port, connectTimeoutMs, headersTimeoutMs, tls }, request, handler);
  }

  replay(request: UpstreamRequest, handler: UpstreamHandler): void {
    // A new connection, never an idle one: it may be as stale as the one that just failed.
    if (this.all.size < this.limit) this.open(request, handler);
    else this.waiting.splice(this.waitingHead, 0, { request, handler });
  }

  private open(request: UpstreamRequest, handler: UpstreamHandler): void {
    const conn = new Http1Connection(this.settings, this, request, handler);
    this.all.add(conn);
    if (this.all.size === 1) watch(this);
  }

  private nextWaiting(): Waiting | undefined {
    if (this.waitingHead === this.waiting.length) return undefined;
    const w = this.waiting[this.waitingHead++]!;
    if (this.waitingHead === this.waiting.length) {
      this.waiting = [];
      this.waitingHead = 0;
    }
    return w;
  }

  released(conn: Http1Connection): void {
    const next = this.nextWaiting();
    if (next !== undefined) conn.send(next.request, next.handler);
    else if (this.closing) conn.destroy(null);
    else this.idle.push(conn);
  }

  removed(conn: Http1Connection): void {
    this.all.delete(conn);
    const i = this.idle.lastIndexOf(conn);
    if (i !== -1) this.idle.splice(i, 1);
    if (this.all.size < this.limit) {
      const next = this.nextWaiting();
      if (next !== undefined) this.open(next.request, next.handler);
    }
    if (this.all.size === 0) {
      unwatch(this);
      if (this.closing) this.whenClosed?.();
    }
  }

  sweep(now: number): void {
    for (const conn of this.all) conn.expire(now);
  }

  close(): Promise<void> {
    if (this.closedPromise !== undefined) return this.closedPromise;
    this.closing = true;
    const connections = new Promise<void>((resolve) => {
      this.whenClosed = resolve;
    });
    this.closedPromise = Promise.all([connections, this.tunnels.closed()]).then(() => {});
    for (const conn of this.idle.splice(0)) conn.destroy(null);
    if (this.all.size === 0) this.whenClosed!();
    return this.closedPromise;
  }

  destroy(): Promise<void> {
    const closed = this.close();
    const error = (): UpstreamError => new UpstreamError(UPSTREAM_ERRORS.POOL_CLOSED, 'the upstream pool was destroyed');
    for (let w = this.nextWaiting(); w !== undefined; w = this.nextWaiting()) w.handler.onError(error());
    for (const conn of [...this.all]) conn.destroy(error(), false);
    this.tunnels.destroyAll();
    return closed;
  }
}
