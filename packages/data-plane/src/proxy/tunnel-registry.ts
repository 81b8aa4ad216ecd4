/**
 * The node's open tunnels (WebSocket), so that silent ones are closed after their route's idle
 * timeout and a draining node can close them all once its grace period is over. The idle check
 * rides the upstream sweeper's tick (upstream/connection-sweeper.ts) while any tunnel is open.
 */
import { type Sweepable, unwatch, watch } from '../upstream/connection-sweeper.js';

export interface OpenTunnel {
  /** performance.now() ms of the last byte either way. */
  readonly lastActivity: number;
  readonly idleTimeoutMs: number;
  close(): void;
}

export class TunnelRegistry implements Sweepable {
  private readonly open = new Set<OpenTunnel>();

  get size(): number {
    return this.open.size;
  }

  add(tunnel: OpenTunnel): void {
    this.open.add(tunnel);
    if (this.open.size === 1) watch(this);
  }

  delete(tunnel: OpenTunnel): void {
    if (this.open.delete(tunnel) && this.open.size === 0) unwatch(this);
  }

  sweep(now: number): void {
    for (const t of this.open) if (now - t.lastActivity > t.idleTimeoutMs) t.close();
  }

  /** Closes every tunnel now (a drain's grace period is over). */
  closeAll(): void {
    for (const t of [...this.open]) t.close();
  }
}
