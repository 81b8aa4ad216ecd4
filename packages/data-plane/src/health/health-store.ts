/**
 * Health as the control plane reports it, kept in memory per pool and backend. Health is not
 * config: it has its own revision and never touches the config version. Routing does not read
 * it yet (a later issue makes unhealthy backends unroutable); the store keeps it ready and shows
 * it on /config.
 */
import type { BackendHealth, HealthUpdate } from '@lb/shared';

export interface BackendHealthState {
  status: string;
  sinceUnixMs: number;
}

export class HealthStore {
  private revisionApplied = 0;
  private readonly state = new Map<string, Map<string, BackendHealthState>>();

  get revision(): number {
    return this.revisionApplied;
  }

  /** A full update replaces everything; a delta changes only the backends it names ("unknown" removes). */
  apply(update: HealthUpdate): void {
    if (update.full) this.state.clear();
    for (const b of update.backends) this.set(b);
    this.revisionApplied = update.revision;
  }

  get(pool: string, backendId: string): BackendHealthState | undefined {
    return this.state.get(pool)?.get(backendId);
  }

  toJSON(): Record<string, Record<string, BackendHealthState>> {
    const out: Record<string, Record<string, BackendHealthState>> = {};
    for (const [pool, backends] of this.state) out[pool] = Object.fromEntries(backends);
    return out;
  }

  private set(b: BackendHealth): void {
    let pool = this.state.get(b.pool);
    if (b.status === 'unknown') {
      pool?.delete(b.backendId);
      if (pool?.size === 0) this.state.delete(b.pool);
      return;
    }
    if (pool === undefined) {
      pool = new Map();
      this.state.set(b.pool, pool);
    }
    pool.set(b.backendId, { status: b.status, sinceUnixMs: b.sinceUnixMs });
  }
}
