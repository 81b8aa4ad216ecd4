/**
 * Health as the control plane reports it, kept in memory per pool and backend. Health is not
 * config: it has its own revision and never touches the config version. host-eligibility.ts reads
 * it to decide which backends are routable; /config shows it.
 */
import type { BackendHealth, HealthUpdate } from '@lb/shared';

export interface BackendHealthState {
  status: string;
  sinceUnixMs: number;
}

/** One backend whose status an update moved (undefined: not known, i.e. `unknown`). */
export interface HealthChange {
  pool: string;
  backendId: string;
  before: string | undefined;
  after: string | undefined;
}

export class HealthStore {
  private revisionApplied = 0;
  private readonly state = new Map<string, Map<string, BackendHealthState>>();

  get revision(): number {
    return this.revisionApplied;
  }

  /**
   * A full update replaces everything; a delta changes only the backends it names ("unknown"
   * removes). Returns the backends whose status moved.
   */
  apply(update: HealthUpdate): HealthChange[] {
    const before = new Map<string, HealthChange>();
    const note = (pool: string, backendId: string) => {
      const key = `${pool}\u0000${backendId}`;
      if (!before.has(key)) before.set(key, { pool, backendId, before: this.get(pool, backendId)?.status, after: undefined });
    };
    if (update.full) {
      for (const [pool, backends] of this.state) for (const id of backends.keys()) note(pool, id);
      this.state.clear();
    }
    for (const b of update.backends) {
      note(b.pool, b.backendId);
      this.set(b);
    }
    this.revisionApplied = update.revision;
    const changes: HealthChange[] = [];
    for (const c of before.values()) {
      c.after = this.get(c.pool, c.backendId)?.status;
      if (c.after !== c.before) changes.push(c);
    }
    return changes;
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
