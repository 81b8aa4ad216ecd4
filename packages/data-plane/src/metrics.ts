/**
 * Metrics that cost the request path almost nothing: the hot path bumps plain numbers on objects
 * it already holds (one per route×pool, one per pool), and prom-client reads them only when
 * /metrics is scraped. Stats objects outlive snapshots, so counters never go backwards when a
 * route or pool is recompiled.
 */
import { certificateExpiries, type Config } from '@lb/shared';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { UPSTREAM_ERROR_KINDS, type UpstreamErrorKind } from './errors.js';
import { type PoolSource, registerBackendSeries } from './metrics/backend-series.js';
import { HistogramFamily, LatencyHistogram } from './metrics/histogram.js';
import { L4Stats } from './metrics/l4-stats.js';
import { ResilienceStats } from './resilience/resilience-stats.js';

/** Index 0 counts requests that ended without a status (the client went away first). */
export const STATUS_CLASS_LABELS = ['aborted', '1xx', '2xx', '3xx', '4xx', '5xx'] as const;

export class RequestStats {
  /** Indexed by Math.floor(status / 100); 0 = aborted. */
  readonly byClass = [0, 0, 0, 0, 0, 0];
  constructor(
    readonly route: string,
    readonly pool: string,
  ) {}

  count(status: number): void {
    const i = (status / 100) | 0;
    if (i > 0 && i < 6) this.byClass[i]!++;
  }
}

export class UpstreamErrorStats {
  readonly byKind: Record<UpstreamErrorKind, number> = { connect: 0, timeout: 0, reset: 0, protocol: 0, tls: 0, other: 0 };
  constructor(readonly pool: string) {}
}

export type SnapshotResult = 'applied' | 'rejected' | 'unchanged';

/**
 * Which metrics a process registers. `node`: all of them (one process serves traffic and talks to
 * the control plane). With --workers N the two halves live apart and the primary's /metrics
 * aggregates them: `worker` has the request path's counters, `primary` the config and control
 * plane ones; each has its own process metrics (summed by the aggregation).
 */
export type MetricsScope = 'node' | 'worker' | 'primary';

/** Pools with more backends than this export pool-level series only (--metrics-backend-limit). */
export const DEFAULT_BACKEND_LIMIT = 100;

export class DataPlaneMetrics {
  readonly registry = new Registry();
  /** Requests forwarded and not yet finished. */
  inFlight = 0;
  /** Upgraded connections (WebSocket) open now, and ever opened. */
  tunnels = 0;
  tunnelsOpened = 0;
  /** Retries, budgets, overloads, rate limits (resilience/resilience-stats.ts). */
  readonly resilience = new ResilienceStats();
  /** Connections, bytes and refusals of tcp and tls-passthrough listeners (metrics/l4-stats.ts). */
  readonly l4 = new L4Stats();
  private readonly requests = new Map<string, RequestStats>();
  /** Set in processes that serve traffic (registerRequestMetrics). */
  private durations: HistogramFamily | undefined;
  private upstreamLatencies: HistogramFamily | undefined;
  private readonly upstream = new Map<string, UpstreamErrorStats>();
  private readonly configVersion: Gauge | undefined;
  private readonly snapshots: Counter<'result'> | undefined;
  private readonly cacheWrites: Counter<'result'> | undefined;
  private readonly controlPlaneConnected: Gauge | undefined;
  private readonly workers: Gauge | undefined;
  private readonly workerRestarts: Counter | undefined;
  private readonly handshakeErrors = new Map<string, number>();
  /** Where lb_dp_certificate_expiry_seconds reads the running config's certificates at scrape time. */
  certificates: () => Config['certificates'] = () => undefined;

  /** What the scrape reads per pool and backend (the applier sets it); undefined before. */
  poolSource: PoolSource | undefined;
  /** Open upstream connections per backend address (the upstream pools set it). */
  connectionSource: (() => Iterable<readonly [string, number]>) | undefined;
  private readonly backendLimit: number;
  private readonly appliedAt: Gauge | undefined;

  constructor(options: { defaultMetrics?: boolean; scope?: MetricsScope; backendLimit?: number } = {}) {
    const scope = options.scope ?? 'node';
    this.backendLimit = options.backendLimit ?? DEFAULT_BACKEND_LIMIT;
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    if (scope !== 'primary') this.registerRequestMetrics();
    if (scope === 'worker') return;
    this.configVersion = new Gauge({ name: 'lb_dp_config_version', help: 'The config version this node serves (0: none yet).', registers: [this.registry] });
    this.configVersion.set(0);
    this.appliedAt = new Gauge({
      name: 'lb_dp_config_applied_timestamp_seconds',
      help: 'When the config version this node serves was applied (Unix seconds; 0: none yet).',
      registers: [this.registry],
    });
    this.appliedAt.set(0);
    this.snapshots = new Counter({
      name: 'lb_dp_snapshots_total',
      help: 'Config snapshots received, by result: applied, rejected (NACKed), unchanged (same version re-acked).',
      labelNames: ['result'],
      registers: [this.registry],
    });
    this.cacheWrites = new Counter({
      name: 'lb_dp_cache_writes_total',
      help: 'Snapshot cache file writes, by result (ok, error).',
      labelNames: ['result'],
      registers: [this.registry],
    });
    this.controlPlaneConnected = new Gauge({
      name: 'lb_dp_control_plane_connected',
      help: '1 while a control plane stream is open.',
      registers: [this.registry],
    });
    this.controlPlaneConnected.set(0);
    const self = this;
    new Gauge({
      name: 'lb_dp_certificate_expiry_seconds',
      help: 'Seconds until each certificate of the running config expires (negative once expired).',
      labelNames: ['certificate'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [certificate, seconds] of certificateExpiries(self.certificates(), Date.now())) this.set({ certificate }, seconds);
      },
    });
    if (scope !== 'primary') return;
    this.workers = new Gauge({ name: 'lb_dp_workers', help: 'Worker processes serving traffic (--workers).', registers: [this.registry] });
    this.workers.set(0);
    this.workerRestarts = new Counter({
      name: 'lb_dp_worker_restarts_total',
      help: 'Worker processes that died and were started again.',
      registers: [this.registry],
    });
  }

  private registerRequestMetrics(): void {
    const self = this;
    this.resilience.register(this.registry);
    this.l4.register(this.registry);
    new Counter({
      name: 'lb_dp_requests_total',
      help: 'Client requests by route, pool and status class (route="" when nothing matched, pool="" when no backend was usable).',
      labelNames: ['route', 'pool', 'status_class'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const s of self.requests.values()) {
          s.byClass.forEach((n, i) => {
            if (n > 0) this.inc({ route: s.route, pool: s.pool, status_class: STATUS_CLASS_LABELS[i]! }, n);
          });
        }
      },
    });
    new Counter({
      name: 'lb_dp_upstream_errors_total',
      help: 'Forwarded requests that failed at the backend, by pool and kind (connect, timeout, reset, protocol, other).',
      labelNames: ['pool', 'kind'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const s of self.upstream.values()) {
          for (const kind of UPSTREAM_ERROR_KINDS) if (s.byKind[kind] > 0) this.inc({ pool: s.pool, kind }, s.byKind[kind]);
        }
      },
    });
    new Counter({
      name: 'lb_dp_tls_handshake_errors_total',
      help: 'TLS handshakes that failed on a listener (a client without TLS, an old version, no shared cipher, a timeout).',
      labelNames: ['listener'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [listener, n] of self.handshakeErrors) this.inc({ listener }, n);
      },
    });
    new Gauge({
      name: 'lb_dp_tunnels',
      help: 'Upgraded connections (WebSocket) tunnelled to backends now.',
      registers: [this.registry],
      collect() {
        this.set(self.tunnels);
      },
    });
    new Counter({
      name: 'lb_dp_tunnels_total',
      help: 'Upgraded connections (WebSocket) tunnelled to backends.',
      registers: [this.registry],
      collect() {
        this.reset();
        if (self.tunnelsOpened > 0) this.inc(self.tunnelsOpened);
      },
    });
    registerBackendSeries(this.registry, () => this.poolSource, this.backendLimit);
    new Gauge({
      name: 'lb_dp_upstream_connections',
      help: 'Connections open (or opening) to a backend address, per process pool of connection settings.',
      labelNames: ['address'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [address, n] of self.connectionSource?.() ?? []) this.set({ address }, n);
      },
    });
    this.durations = new HistogramFamily(
      'lb_dp_request_duration_seconds',
      "Time from a forwarded request's arrival to the end of its response (or the client leaving), by route.",
      this.registry,
    );
    this.upstreamLatencies = new HistogramFamily(
      'lb_dp_upstream_response_seconds',
      'Time from sending an attempt to its response head, by pool (every attempt, retries included).',
      this.registry,
    );
    new Gauge({
      name: 'lb_dp_requests_in_flight',
      help: 'Requests forwarded to a backend and not yet finished.',
      registers: [this.registry],
      collect() {
        this.set(self.inFlight);
      },
    });
  }

  /** The counters for one route×pool pair; the same object for the same pair, for the process's life. */
  requestStats(route: string, pool: string): RequestStats {
    const key = `${route}\u0000${pool}`;
    let s = this.requests.get(key);
    if (s === undefined) {
      s = new RequestStats(route, pool);
      this.requests.set(key, s);
    }
    return s;
  }

  /** A route's request-duration histogram; a throwaway one where no traffic is served (the primary). */
  requestDuration(route: string): LatencyHistogram {
    return this.durations?.series(route, { route }) ?? new LatencyHistogram({ route });
  }

  /** A pool's time-to-response-head histogram. */
  upstreamLatency(pool: string): LatencyHistogram {
    return this.upstreamLatencies?.series(pool, { pool }) ?? new LatencyHistogram({ pool });
  }

  tlsHandshakeFailed(listener: string): void {
    this.handshakeErrors.set(listener, (this.handshakeErrors.get(listener) ?? 0) + 1);
  }

  upstreamErrors(pool: string): UpstreamErrorStats {
    let s = this.upstream.get(pool);
    if (s === undefined) {
      s = new UpstreamErrorStats(pool);
      this.upstream.set(pool, s);
    }
    return s;
  }

  // The methods below are no-ops in a worker: its primary counts these for the whole node.
  snapshot(result: SnapshotResult): void {
    this.snapshots?.inc({ result });
  }

  cacheWrite(result: 'ok' | 'error'): void {
    this.cacheWrites?.inc({ result });
  }

  setConfigVersion(version: number): void {
    this.configVersion?.set(version);
    this.appliedAt?.set(Date.now() / 1000);
  }

  setControlPlaneConnected(connected: boolean): void {
    this.controlPlaneConnected?.set(connected ? 1 : 0);
  }

  setWorkers(n: number): void {
    this.workers?.set(n);
  }

  workerRestarted(): void {
    this.workerRestarts?.inc();
  }
}
