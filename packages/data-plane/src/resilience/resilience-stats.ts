/**
 * Counters of the resilience policies, kept like the rest of the request path's metrics: plain
 * numbers on objects the forwarder already holds (one per pool, one per route), read by prom-client
 * only when /metrics is scraped. They outlive snapshots, so counters never go backwards.
 */
import { Counter, type Registry } from 'prom-client';
import type { OverloadReason } from './circuit-breaker.js';

export class PoolResilienceStats {
  /** Attempts after the first (each one a request sent with X-Retry-Count ≥ 1). */
  retries = 0;
  /** Retries the budget refused. */
  budgetExhausted = 0;
  /** Requests refused by a limit, by which one. */
  readonly overloaded: Record<Exclude<OverloadReason, 'node'>, number> = { backend: 0, pool: 0, 'circuit-open': 0 };
  /** Times an error-rate breaker of a backend of this pool opened. */
  breakerOpened = 0;
  constructor(readonly pool: string) {}
}

export class ResilienceStats {
  private readonly pools = new Map<string, PoolResilienceStats>();
  private readonly rateLimited = new Map<string, { n: number }>();
  /** Requests shed by the node-wide limits (concurrency, event-loop delay). */
  shed = 0;

  pool(name: string): PoolResilienceStats {
    let s = this.pools.get(name);
    if (s === undefined) {
      s = new PoolResilienceStats(name);
      this.pools.set(name, s);
    }
    return s;
  }

  /** The counter of 429s of one route; bump `.n`. */
  route(name: string): { n: number } {
    let s = this.rateLimited.get(name);
    if (s === undefined) {
      s = { n: 0 };
      this.rateLimited.set(name, s);
    }
    return s;
  }

  register(registry: Registry): void {
    const self = this;
    new Counter({
      name: 'lb_dp_retries_total',
      help: 'Retried attempts (the X-Retry-Count a backend saw was ≥ 1), by pool.',
      labelNames: ['pool'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of self.pools.values()) if (s.retries > 0) this.inc({ pool: s.pool }, s.retries);
      },
    });
    new Counter({
      name: 'lb_dp_retry_budget_exhausted_total',
      help: "Retries not made because the pool's retry budget was spent.",
      labelNames: ['pool'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of self.pools.values()) if (s.budgetExhausted > 0) this.inc({ pool: s.pool }, s.budgetExhausted);
      },
    });
    new Counter({
      name: 'lb_dp_overloaded_total',
      help: 'Requests answered 503 with X-LB-Overloaded, by pool and limit: backend, pool (circuit-breaker limits), circuit-open (error-rate breaker), node (load shedding; pool="").',
      labelNames: ['pool', 'limit'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of self.pools.values()) for (const [limit, n] of Object.entries(s.overloaded)) if (n > 0) this.inc({ pool: s.pool, limit }, n);
        if (self.shed > 0) this.inc({ pool: '', limit: 'node' }, self.shed);
      },
    });
    new Counter({
      name: 'lb_dp_circuit_breaker_opened_total',
      help: "Times a backend's error-rate breaker opened, by pool.",
      labelNames: ['pool'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of self.pools.values()) if (s.breakerOpened > 0) this.inc({ pool: s.pool }, s.breakerOpened);
      },
    });
    new Counter({
      name: 'lb_dp_rate_limited_total',
      help: "Requests answered 429 by a route's rate limit.",
      labelNames: ['route'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [route, s] of self.rateLimited) if (s.n > 0) this.inc({ route }, s.n);
      },
    });
  }
}
