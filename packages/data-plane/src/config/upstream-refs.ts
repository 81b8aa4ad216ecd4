/**
 * Which upstream pools (keep-alive connections per backend address) the running routing table
 * uses, counted per compiled pool. A new table differs from the running one only in the pools it
 * rebuilt, so reconciling the open upstream pools costs what changed: a one-backend delta to a
 * 100,000-backend config looks at one pool's backends, not at every backend.
 */
import { POOL_DEFAULTS } from '@lb/shared';
import type { RoutingTable } from '../routing/routing-table.js';

export class UpstreamRefs {
  private readonly counts = new Map<string, number>();

  /**
   * Moves the counts from `previous` to `next` (the tables share the pools that did not change)
   * and returns the upstream keys no pool uses any more, each with the longest drainTimeoutMs of
   * the pools that let it go: requests in flight to it get that long to finish.
   */
  swap(previous: RoutingTable | undefined, next: RoutingTable): Map<string, number> {
    const released = new Map<string, number>();
    for (const [name, pool] of previous?.pools ?? []) {
      if (next.pools.get(name) === pool) continue;
      const grace = pool.settings.drainTimeoutMs ?? POOL_DEFAULTS.drainTimeoutMs;
      for (const key of pool.upstreamKeys) {
        const left = (this.counts.get(key) ?? 1) - 1;
        if (left > 0) this.counts.set(key, left);
        else {
          this.counts.delete(key);
          released.set(key, Math.max(released.get(key) ?? 0, grace));
        }
      }
    }
    for (const [name, pool] of next.pools) {
      if (previous?.pools.get(name) === pool) continue;
      for (const key of pool.upstreamKeys) {
        this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
        released.delete(key);
      }
    }
    return released;
  }
}
