/**
 * One upstream pool (keep-alive connections) per backend address, shared by every config pool
 * that names the address and kept across snapshots while the address stays in use, so a config
 * change does not cost a reconnect. A pool whose address leaves the config is closed
 * gracefully: queued and in-flight requests finish first, which is what lets draining and
 * removed backends finish their work.
 *
 * Pools with `protocol: http2` or `h2c` talk HTTP/2 (http2-upstream.ts). For HTTP/1.1 the client is the built-in one on node's native HTTP parser (http1-pool.ts) unless that
 * parser failed its self-test (http1/parser-self-test.ts) or the operator asks for undici
 * (`--upstream-client undici`).
 */
import { nativeHttp1 } from '../http1/parser-self-test.js';
import { DEFAULT_MAX_STREAMS_PER_CONNECTION, type PoolProtocol } from '@lb/shared';
import { Http1Pool, type Http1PoolOptions } from './http1-pool.js';
import { Http2Upstream } from './http2-upstream.js';
import { UndiciUpstream } from './undici-upstream.js';
import type { Upstream } from './upstream.js';
import type { UpstreamTls } from '../tls/upstream-tls.js';
import { DEFAULT_TCP_IO, type TcpIo } from '../runtime/raw-tcp-self-test.js';

export const UPSTREAM_CLIENTS = ['native', 'undici'] as const;
export type UpstreamClient = (typeof UPSTREAM_CLIENTS)[number];

/** The client used when none is asked for: the built-in one where node's parser passed its self-test. */
export const DEFAULT_UPSTREAM_CLIENT: UpstreamClient = nativeHttp1().ok ? 'native' : 'undici';

export interface UpstreamOptions {
  /** Time allowed to open a connection to a backend (ms); a miss is a 502. Default 5000. */
  connectTimeoutMs?: number;
  /** Time allowed for the response headers once the request is sent (ms); a miss is a 504. Default 60000. */
  headersTimeoutMs?: number;
  /** Longest silence between two body chunks of a response (ms). Default 60000. */
  bodyTimeoutMs?: number;
  /** How long an idle upstream connection is kept, unless the backend's Keep-Alive says less (ms). Default 30000. */
  keepAliveTimeoutMs?: number;
  /** Which HTTP/1.1 client talks to backends. Default DEFAULT_UPSTREAM_CLIENT. */
  client?: UpstreamClient;
  /** An HTTP/2 session to a backend silent this long is pinged, and destroyed without an answer within as long again (ms); 0: never. Default 20000. */
  http2PingIntervalMs?: number;
  /** How the built-in client's plain connections to IP addresses move bytes. Default DEFAULT_TCP_IO. */
  io?: TcpIo;
}

export const UPSTREAM_DEFAULTS = Object.freeze({ http2PingIntervalMs: 20_000 });

/** A config pool's connection settings (its `timeouts` and circuit breaker); absent fields: the node's UpstreamOptions. */
export interface UpstreamSettings {
  connectTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
  /** Most connections to the address; absent: no limit. */
  connections?: number;
  /** TLS to the backend (the pool's `tls`); absent: plain HTTP. */
  tls?: UpstreamTls | undefined;
  /** HTTP/1.1 (absent, `http1`) or HTTP/2 (`http2` over TLS, `h2c`): the pool's `protocol`. */
  protocol?: PoolProtocol | undefined;
  /** HTTP/2 only: streams per connection; absent: DEFAULT_MAX_STREAMS_PER_CONNECTION. */
  maxStreamsPerConnection?: number | undefined;
}

/** The key of the upstream pool for `address` with `settings`: the address alone for the defaults. */
export function upstreamKey(address: string, settings: UpstreamSettings | undefined): string {
  if (settings === undefined) return address;
  const { connectTimeoutMs: c, keepAliveTimeoutMs: k, connections: n, tls } = settings;
  const http2 = settings.protocol === undefined || settings.protocol === 'http1' ? '' : `,${settings.protocol}:${settings.maxStreamsPerConnection ?? ''}`;
  if (
    tls === undefined &&
    http2 === '' &&
    (c === undefined || c === DEFAULT_SETTINGS.connectTimeoutMs) &&
    (k === undefined || k === DEFAULT_SETTINGS.keepAliveTimeoutMs) &&
    (n === undefined || n === DEFAULT_SETTINGS.connections)
  )
    return address;
  return `${address}#${c ?? ''},${k ?? ''},${n ?? ''}${tls === undefined ? '' : `,tls:${tls.identity}`}${http2}`;
}

/** The settings every pool has unless it says otherwise (RESILIENCE_DEFAULTS): these share the plain-address pool. */
const DEFAULT_SETTINGS = { connectTimeoutMs: 1000, keepAliveTimeoutMs: 60_000, connections: 1024 } as const;

/** What the routing table needs: an upstream per address (and connection settings). */
export interface UpstreamSource {
  acquire(address: string, settings?: UpstreamSettings): Upstream;
}

export class UpstreamPools implements UpstreamSource {
  /** By upstreamKey(); several config pools naming an address with the same settings share one. */
  private readonly pools = new Map<string, { address: string; pool: Upstream }>();
  private readonly options: Http1PoolOptions;
  private readonly http2PingIntervalMs: number;
  readonly client: UpstreamClient;

  constructor(options: UpstreamOptions = {}) {
    this.options = {
      connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
      headersTimeoutMs: options.headersTimeoutMs ?? 60_000,
      bodyTimeoutMs: options.bodyTimeoutMs ?? 60_000,
      keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? 30_000,
      rawHandles: (options.io ?? DEFAULT_TCP_IO) === 'handles',
    };
    this.http2PingIntervalMs = options.http2PingIntervalMs ?? UPSTREAM_DEFAULTS.http2PingIntervalMs;
    const client = options.client ?? DEFAULT_UPSTREAM_CLIENT;
    const native = nativeHttp1();
    if (client === 'native' && !native.ok) throw new Error(`the native upstream client needs node's HTTP parser (${native.reason}); use the undici client`);
    this.client = client;
  }

  /**
   * The pool for `address` (`host:port`) with `settings`, created on first use; no connection is
   * opened yet. Settings absent use the node's options (UpstreamOptions).
   */
  acquire(address: string, settings?: UpstreamSettings): Upstream {
    const key = upstreamKey(address, settings);
    let entry = this.pools.get(key);
    if (entry === undefined) {
      const options: Http1PoolOptions = { ...this.options };
      if (settings?.connectTimeoutMs !== undefined) options.connectTimeoutMs = settings.connectTimeoutMs;
      if (settings?.keepAliveTimeoutMs !== undefined) options.keepAliveTimeoutMs = settings.keepAliveTimeoutMs;
      if (settings?.connections !== undefined) options.connections = settings.connections;
      if (settings?.tls !== undefined) options.tls = settings.tls;
      const protocol = settings?.protocol ?? 'http1';
      const pool =
        protocol !== 'http1'
          ? new Http2Upstream(address, {
              ...options,
              maxStreamsPerConnection: settings?.maxStreamsPerConnection ?? DEFAULT_MAX_STREAMS_PER_CONNECTION,
              pingIntervalMs: this.http2PingIntervalMs,
            })
          : this.client === 'native'
            ? new Http1Pool(address, options)
            : new UndiciUpstream(address, options);
      entry = { address, pool };
      this.pools.set(key, entry);
    }
    return entry.pool;
  }

  /**
   * Closes (gracefully, not awaited) every pool whose key (upstreamKey) is not in `keep`. Requests
   * in flight finish; `graceFor(address)` (ms) cuts those still running after that long (drainTimeoutMs).
   */
  retainOnly(keep: ReadonlySet<string>, graceFor?: (address: string) => number | undefined): void {
    for (const [key, { address }] of this.pools) if (!keep.has(key)) this.close(key, graceFor?.(address));
  }

  /**
   * Closes (gracefully, not awaited) the pools of these keys (upstreamKey), each cutting requests
   * still running after its grace (ms). What a new routing table stopped using, found without
   * walking every backend of a large config (config/upstream-refs.ts).
   */
  release(graceByKey: ReadonlyMap<string, number>): void {
    for (const [key, grace] of graceByKey) this.close(key, grace);
  }

  private close(key: string, grace: number | undefined): void {
    const entry = this.pools.get(key);
    if (entry === undefined) return;
    this.pools.delete(key);
    const closed = entry.pool.close();
    if (grace !== undefined) {
      const timer = setTimeout(() => void entry.pool.destroy(), grace);
      timer.unref();
      void closed.then(() => clearTimeout(timer));
    }
  }

  /** Open connections per upstream pool, by its key (the address, with its settings when not the defaults). */
  *connectionCounts(): Iterable<readonly [string, number]> {
    for (const [key, { pool }] of this.pools) yield [key, pool.openConnections];
  }

  /** The keys (upstreamKey) of the pools open now: the plain address for default settings. */
  addresses(): string[] {
    return [...this.pools.keys()];
  }

  /** Closes every pool; in-flight requests get `graceMs` to finish before their sockets are destroyed. */
  async closeAll(graceMs = 0): Promise<void> {
    const pools = [...this.pools.values()].map((e) => e.pool);
    this.pools.clear();
    await Promise.all(
      pools.map(async (pool) => {
        let timer: NodeJS.Timeout | undefined;
        const forced = new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            pool.destroy().then(resolve, resolve);
          }, graceMs);
        });
        await Promise.race([pool.close(), forced]);
        clearTimeout(timer);
      }),
    );
  }
}
