/**
 * Per-backend series, read at scrape time from the runtimes the request path keeps anyway
 * (balancer/host.ts): attempts by outcome, time to response heads, requests in flight, health,
 * ejection, breaker state, retries. Cardinality is bounded: a pool with more backends than the
 * limit (--metrics-backend-limit) exports pool-level series only, so a 10,000-backend pool costs
 * /metrics a handful of lines, not 10,000 × every series.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { BACKEND_OUTCOMES, type BackendRuntime } from '../balancer/host.js';
import { type Labels, scrapedSeries } from './scraped-series.js';

/** One backend as the scrape sees it. */
export interface BackendView {
  readonly pool: string;
  readonly backend: string;
  readonly runtime: BackendRuntime;
  /** Active in config, not unhealthy, not ejected. */
  readonly eligible: boolean;
  readonly ejected: boolean;
}

/** One pool as the scrape sees it. */
export interface PoolView {
  readonly pool: string;
  readonly backends: readonly BackendView[];
  /** Routing to every active backend because too few are eligible. */
  readonly panic: boolean;
}

export type PoolSource = () => Iterable<PoolView>;

/** Pools at or under `limit` backends get per-backend series; every pool gets the pool-level ones. */
export function registerBackendSeries(registry: Registry, source: () => PoolSource | undefined, limit: number): void {
  const each = (fn: (pool: PoolView, detailed: boolean) => void): void => {
    const pools = source();
    if (pools === undefined) return;
    for (const pool of pools()) fn(pool, pool.backends.length <= limit);
  };
  new Counter({
    name: 'lb_dp_backend_requests_total',
    help: 'Attempts sent to a backend, by how they ended: the status class of its answer, failed (no answer: connect, reset, timeout, protocol) or aborted (the client left).',
    labelNames: ['pool', 'backend', 'outcome'],
    registers: [registry],
    collect() {
      this.reset();
      each((pool, detailed) => {
        if (!detailed) return;
        for (const b of pool.backends) {
          b.runtime.outcomes.forEach((n, i) => {
            if (n > 0) this.inc({ pool: pool.pool, backend: b.backend, outcome: BACKEND_OUTCOMES[i]! }, n);
          });
        }
      });
    },
  });
  // One series per backend of a pool within the limit; `read` answers undefined to leave a backend out.
  const perBackend = (
    type: 'counter' | 'gauge',
    name: string,
    help: string,
    read: (b: BackendView) => number | undefined,
    aggregator: 'sum' | 'max' = 'sum',
  ): void => {
    scrapedSeries(
      registry,
      type,
      name,
      help,
      ['pool', 'backend'],
      function* () {
        const pools = source();
        if (pools === undefined) return;
        for (const pool of pools()) {
          if (pool.backends.length > limit) continue;
          for (const b of pool.backends) {
            const v = read(b);
            if (v !== undefined) yield [{ pool: pool.pool, backend: b.backend }, v] as [Labels, number];
          }
        }
      },
      aggregator,
    );
  };
  perBackend(
    'counter',
    'lb_dp_backend_response_seconds_total',
    'Seconds from sending an attempt to its response head, summed per backend (divide by lb_dp_backend_responses_total for the mean).',
    (b) => (b.runtime.responses > 0 ? b.runtime.responseSeconds : undefined),
  );
  perBackend('counter', 'lb_dp_backend_responses_total', 'Response heads received from a backend.', (b) => b.runtime.responses);
  perBackend('counter', 'lb_dp_backend_retries_total', 'Failed attempts to a backend that were retried on another.', (b) => b.runtime.retried);
  perBackend('gauge', 'lb_dp_backend_active_requests', 'Requests (and WebSocket tunnels) in flight to a backend.', (b) => b.runtime.active);
  // Every worker sees the same health and ejections: a node's value is any worker's, not their sum.
  perBackend(
    'gauge',
    'lb_dp_backend_eligible',
    '1 when the backend may take new requests (active, not unhealthy, not ejected), else 0.',
    (b) => (b.eligible ? 1 : 0),
    'max',
  );
  perBackend('gauge', 'lb_dp_backend_ejected', '1 while outlier detection keeps the backend out, else 0.', (b) => (b.ejected ? 1 : 0), 'max');
  perBackend(
    'gauge',
    'lb_dp_backend_circuit_state',
    "The backend's error-rate breaker: 0 closed, 1 open, 2 half-open (absent for pools without one). Per process: a node shows its most open worker.",
    (b) => b.runtime.breaker?.stateCode,
    'max',
  );
  new Gauge({
    name: 'lb_dp_pool_backends',
    help: "A pool's backends by state: total in the config, eligible for new requests, ejected.",
    labelNames: ['pool', 'state'],
    aggregator: 'max',
    registers: [registry],
    collect() {
      this.reset();
      each((pool) => {
        let eligible = 0;
        let ejected = 0;
        for (const b of pool.backends) {
          if (b.eligible) eligible++;
          if (b.ejected) ejected++;
        }
        this.set({ pool: pool.pool, state: 'total' }, pool.backends.length);
        this.set({ pool: pool.pool, state: 'eligible' }, eligible);
        this.set({ pool: pool.pool, state: 'ejected' }, ejected);
      });
    },
  });
  new Gauge({
    name: 'lb_dp_pool_panic',
    help: '1 while a pool routes to every active backend because too few are eligible (panicThresholdPercent).',
    labelNames: ['pool'],
    aggregator: 'max',
    registers: [registry],
    collect() {
      this.reset();
      each((pool) => this.set({ pool: pool.pool }, pool.panic ? 1 : 0));
    },
  });
  new Gauge({
    name: 'lb_dp_pool_active_requests',
    help: 'Requests in flight to a pool, all its backends together.',
    labelNames: ['pool'],
    registers: [registry],
    collect() {
      this.reset();
      each((pool) => {
        let active = 0;
        for (const b of pool.backends) active += b.runtime.active;
        this.set({ pool: pool.pool }, active);
      });
    },
  });
}
