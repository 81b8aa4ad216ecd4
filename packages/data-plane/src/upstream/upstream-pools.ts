/**
 * One undici Pool (keep-alive connections) per backend address, shared by every config pool that
 * names the address and kept across snapshots while the address stays in use, so a config change
 * does not cost a reconnect. A pool whose address leaves the config is closed gracefully:
 * undici's close() lets queued and in-flight requests finish first, which is what lets
 * draining and removed backends finish their work.
 */
import { Pool, type Dispatcher } from 'undici';

export interface UpstreamOptions {
  /** Time allowed to open a connection to a backend (ms); a miss is a 502. Default 5000. */
  connectTimeoutMs?: number;
  /** Time allowed for the response headers once the request is sent (ms); a miss is a 504. Default 60000. */
  headersTimeoutMs?: number;
  /** Longest silence between two body chunks of a response (ms). Default 60000. */
  bodyTimeoutMs?: number;
  /** How long an idle upstream connection is kept, unless the backend's Keep-Alive says less (ms). Default 30000. */
  keepAliveTimeoutMs?: number;
}

/** What the routing table needs: a dispatcher per address. */
export interface UpstreamSource {
  acquire(address: string): Dispatcher;
}

export class UpstreamPools implements UpstreamSource {
  private readonly pools = new Map<string, Pool>();
  private readonly options: Pool.Options;

  constructor(options: UpstreamOptions = {}) {
    this.options = {
      connectTimeout: options.connectTimeoutMs ?? 5_000,
      headersTimeout: options.headersTimeoutMs ?? 60_000,
      bodyTimeout: options.bodyTimeoutMs ?? 60_000,
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 30_000,
      keepAliveMaxTimeout: Math.max(options.keepAliveTimeoutMs ?? 30_000, 600_000),
      pipelining: 1,
    };
  }

  /** The pool for `address` (`host:port`), created on first use; no connection is opened yet. */
  acquire(address: string): Dispatcher {
    let pool = this.pools.get(address);
    if (pool === undefined) {
      pool = new Pool(`http://${address}`, this.options);
      // Connection failures reach the request's handler; an 'error' event must not crash the process.
      pool.on('connectionError', () => {});
      this.pools.set(address, pool);
    }
    return pool;
  }

  /**
   * Closes (gracefully, not awaited) every pool whose address is not in `keep`. Requests in flight
   * finish; `graceFor(address)` (ms) cuts those still running after that long (drainTimeoutMs).
   */
  retainOnly(keep: ReadonlySet<string>, graceFor?: (address: string) => number | undefined): void {
    for (const [address, pool] of this.pools) {
      if (!keep.has(address)) {
        this.pools.delete(address);
        const closed = pool.close().catch(() => {});
        const grace = graceFor?.(address);
        if (grace !== undefined) {
          const timer = setTimeout(() => void pool.destroy().catch(() => {}), grace);
          timer.unref();
          void closed.then(() => clearTimeout(timer));
        }
      }
    }
  }

  addresses(): string[] {
    return [...this.pools.keys()];
  }

  /** Closes every pool; in-flight requests get `graceMs` to finish before their sockets are destroyed. */
  async closeAll(graceMs = 0): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(
      pools.map(async (pool) => {
        let timer: NodeJS.Timeout | undefined;
        const forced = new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            pool.destroy().then(resolve, resolve);
          }, graceMs);
        });
        await Promise.race([pool.close().catch(() => {}), forced]);
        clearTimeout(timer);
      }),
    );
  }
}
