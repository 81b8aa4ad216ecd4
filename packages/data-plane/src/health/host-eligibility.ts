/**
 * Which backends of a pool may take new requests, and at what weight — the input of every pool's
 * balancer. Decided from in-memory state only (config, pushed health, local ejections, time):
 *
 * - Eligible: config state `active`, health not `unhealthy` (unknown counts as routable), and not
 *   ejected by outlier detection. `draining` and `disabled` backends never are.
 * - Panic: when eligible < panicThresholdPercent of the active backends, every active backend is
 *   routable again (fail open: a broken health endpoint must not take the pool down).
 * - Slow start: a backend added to an active set (not in the first table this node applies) or
 *   turning healthy from unhealthy ramps its weight linearly from 10% to 100% over slowStartMs
 *   (Envoy's formula with aggression 1). Algorithms that ignore weights (round_robin, random,
 *   least_connections) ramp the backend's share all the same (balancer/factory.ts).
 *
 * When any of these inputs change (a health delta, an ejection or its end, a slow-start tick) the
 * affected pool's balancer is rebuilt through the algorithm factory and swapped in with one
 * assignment; the request path only ever reads `pool.balancer`.
 */
import { POOL_DEFAULTS, type Config, type Logger } from '@lb/shared';
import { createBalancer } from '../balancer/factory.js';
import type { Host } from '../balancer/host.js';
import type { OutlierDetector } from '../outlier/outlier-detector.js';
import type { CompiledBackend, RoutingTable } from '../routing/routing-table.js';
import type { Clock } from '../runtime/clock.js';
import type { HealthChange, HealthStore } from './health-store.js';

type PoolConfig = Config['pools'][string];

/** Envoy's slow-start floor: a ramping backend starts at this share of its weight. */
export const SLOW_START_MIN_FACTOR = 0.1;

/** Effective-weight factor `elapsed` ms into a `windowMs` ramp: 0.1 → 1, linear. */
export function slowStartFactor(elapsedMs: number, windowMs: number): number {
  if (windowMs <= 0 || elapsedMs >= windowMs) return 1;
  return Math.max(SLOW_START_MIN_FACTOR, Math.max(0, elapsedMs) / windowMs);
}

export interface PoolEligibility {
  active: number;
  eligible: number;
  panic: boolean;
  /** Backend ids still ramping up. */
  ramping: string[];
}

export interface HostEligibilityOptions {
  health: HealthStore;
  outliers: OutlierDetector;
  clock: Clock;
  logger?: Logger;
  /** Most time between rebuilds of a ramping pool (ms). Default 1000; shorter windows tick faster. */
  maxTickMs?: number;
}

export class HostEligibility {
  private table: RoutingTable | undefined;
  /** Whether a table was ever adopted: backends of the very first one start at full weight. */
  private adopted = false;
  private readonly rampStart = new Map<string, number>();
  private readonly state = new Map<string, PoolEligibility>();
  private tickTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: HostEligibilityOptions) {}

  /**
   * The compile hook (CompileDeps.hosts): the hosts of one pool with effective weights. Also
   * points every active backend's runtime at its outlier tracker.
   */
  readonly hostsFor = (pool: string, settings: PoolConfig, backends: readonly CompiledBackend[]): Host<CompiledBackend>[] => {
    const now = this.options.clock.now();
    const active = backends.filter((b) => b.upstream !== undefined);
    if (this.adopted) {
      // By id, not a search per backend: a pool of 50,000 backends is rebuilt in milliseconds.
      const before = new Map((this.table?.pools.get(pool)?.backends ?? []).map((o) => [o.id, o]));
      for (const b of active) {
        const was = before.get(b.id);
        if (was === undefined || was.upstream === undefined) this.startRamp(pool, b.id, now);
      }
    }
    const trackers = this.options.outliers.configure(
      pool,
      settings.outlierDetection,
      active.map((b) => b.id),
    );
    for (const b of backends) b.runtime.outlier = trackers.get(b.id) ?? null;
    return this.compute(pool, settings, active, now);
  };

  /** The applier swapped `table` in. */
  adopt(table: RoutingTable): void {
    this.table = table;
    this.adopted = true;
    for (const pool of [...this.state.keys()]) {
      if (table.pools.has(pool)) continue;
      this.state.delete(pool);
      this.options.outliers.configure(pool, undefined, []);
    }
    for (const key of [...this.rampStart.keys()]) if (!table.pools.has(key.slice(0, key.indexOf('\u0000')))) this.rampStart.delete(key);
    this.scheduleTick();
  }

  /** Health moved: rebuild the pools it touched; a backend back from unhealthy ramps up. */
  onHealth(changes: readonly HealthChange[]): void {
    const now = this.options.clock.now();
    const pools = new Set<string>();
    for (const c of changes) {
      pools.add(c.pool);
      if (c.before === 'unhealthy' && c.after !== 'unhealthy') this.startRamp(c.pool, c.backendId, now);
    }
    for (const pool of pools) this.rebuild(pool);
  }

  /** Recomputes one pool's hosts and swaps its balancer in. */
  rebuild(pool: string): void {
    const compiled = this.table?.pools.get(pool);
    if (compiled === undefined) return;
    const active = compiled.backends.filter((b) => b.upstream !== undefined);
    const hosts = this.compute(pool, compiled.settings, active, this.options.clock.now());
    compiled.balancer = createBalancer(compiled.settings, hosts, compiled.balancerDeps);
    this.scheduleTick();
  }

  describe(): Record<string, PoolEligibility> {
    return Object.fromEntries(this.state);
  }

  close(): void {
    clearTimeout(this.tickTimer);
    this.tickTimer = undefined;
  }

  private startRamp(pool: string, id: string, now: number): void {
    this.rampStart.set(`${pool}\u0000${id}`, now);
  }

  private compute(pool: string, settings: PoolConfig, active: readonly CompiledBackend[], now: number): Host<CompiledBackend>[] {
    const { health, outliers } = this.options;
    const eligible = active.filter((b) => health.get(pool, b.id)?.status !== 'unhealthy' && !outliers.isEjected(pool, b.id));
    const threshold = settings.panicThresholdPercent ?? POOL_DEFAULTS.panicThresholdPercent;
    const panic = active.length > 0 && eligible.length * 100 < threshold * active.length;
    const chosen = panic ? active : eligible;
    const windowMs = settings.slowStartMs ?? POOL_DEFAULTS.slowStartMs;
    const ramping: string[] = [];
    const hosts = chosen.map((b) => {
      const key = `${pool}\u0000${b.id}`;
      const started = this.rampStart.get(key);
      let factor = 1;
      if (started !== undefined) {
        factor = slowStartFactor(now - started, windowMs);
        if (factor >= 1) this.rampStart.delete(key);
        else ramping.push(b.id);
      }
      return factor < 1
        ? { backend: b, id: b.id, weight: b.weight * factor, runtime: b.runtime, ramp: factor }
        : { backend: b, id: b.id, weight: b.weight, runtime: b.runtime };
    });
    const before = this.state.get(pool);
    if (before !== undefined && before.panic !== panic)
      this.options.logger?.warn(
        { pool, eligible: eligible.length, active: active.length },
        panic ? 'pool in panic: routing to every active backend' : 'pool out of panic',
      );
    this.state.set(pool, { active: active.length, eligible: eligible.length, panic, ramping });
    return hosts;
  }

  /** While any pool ramps, rebuild ramping pools every tick (1/20 of the window, 50..maxTickMs). */
  private scheduleTick(): void {
    if (this.tickTimer !== undefined) return;
    let tickMs = Infinity;
    for (const [pool, s] of this.state) {
      if (s.ramping.length === 0) continue;
      const windowMs = this.table?.pools.get(pool)?.settings.slowStartMs ?? 0;
      tickMs = Math.min(tickMs, Math.min(this.options.maxTickMs ?? 1_000, Math.max(50, windowMs / 20)));
    }
    if (tickMs === Infinity) return;
    this.tickTimer = setTimeout(() => {
      this.tickTimer = undefined;
      for (const [pool, s] of [...this.state]) if (s.ramping.length > 0) this.rebuild(pool);
      this.scheduleTick();
    }, tickMs);
    this.tickTimer.unref();
  }
}
