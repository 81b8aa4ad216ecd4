/**
 * Traffic summaries for the control plane (TrafficReport in the proto), computed from what a
 * /metrics scrape reads — the same counters and histograms, as prom-client JSON — so the request
 * path does no extra work and a node with workers summarises their aggregation. Each call
 * compares the cumulative values with the previous call's: the report covers the window between.
 */
import type { TrafficReport, TrafficSummary } from '@lb/shared';
import { LATENCY_BUCKETS } from './histogram.js';

/** A metric as prom-client's getMetricsAsJSON() answers it (only what is read here). */
export interface MetricJson {
  name: string;
  values: ReadonlyArray<{ value: number; labels: Readonly<Record<string, string | number | undefined>>; metricName?: string }>;
}

/** Most backends one report names (the busiest first): a report stays small whatever the fleet. */
export const MAX_REPORTED_BACKENDS = 1000;

/** Cumulative values of one route, pool or backend at one read. */
interface Totals {
  requests: number;
  errors: number;
  /** Cumulative histogram counts per LATENCY_BUCKETS bound, then +Inf (empty for backends). */
  buckets: number[];
  /** Seconds summed and how many observations (histogram sum/count, or a backend's response heads). */
  seconds: number;
  observed: number;
}

interface Reading {
  at: number;
  routes: Map<string, Totals>;
  pools: Map<string, Totals>;
  backends: Map<string, Totals & { pool: string; backend: string }>;
}

const BOUNDS = LATENCY_BUCKETS.map(String);
const BOUNDS_MS = LATENCY_BUCKETS.map((s) => s * 1000);

function totals(): Totals {
  return { requests: 0, errors: 0, buckets: new Array<number>(LATENCY_BUCKETS.length + 1).fill(0), seconds: 0, observed: 0 };
}

function entry<T extends Totals>(map: Map<string, T>, key: string, make: () => T): T {
  let t = map.get(key);
  if (t === undefined) {
    t = make();
    map.set(key, t);
  }
  return t;
}

/** Adds a histogram family's `_bucket`, `_sum` and `_count` samples into `map`, keyed by `label`. */
function addHistogram(metric: MetricJson, label: string, map: Map<string, Totals>): void {
  for (const v of metric.values) {
    const key = String(v.labels[label] ?? '');
    const t = entry(map, key, totals);
    if (v.metricName?.endsWith('_bucket')) {
      const le = String(v.labels.le);
      const i = le === '+Inf' ? LATENCY_BUCKETS.length : BOUNDS.indexOf(le);
      if (i >= 0) t.buckets[i]! += v.value;
    } else if (v.metricName?.endsWith('_sum')) t.seconds += v.value;
    else if (v.metricName?.endsWith('_count')) t.observed += v.value;
  }
}

function read(metrics: readonly MetricJson[], at: number): Reading {
  const reading: Reading = { at, routes: new Map(), pools: new Map(), backends: new Map() };
  for (const metric of metrics) {
    switch (metric.name) {
      case 'lb_dp_requests_total':
        for (const v of metric.values) {
          const cls = String(v.labels.status_class);
          // Aborted requests (the client left) are neither answers nor errors.
          if (cls === 'aborted') continue;
          for (const [map, key] of [
            [reading.routes, String(v.labels.route ?? '')],
            [reading.pools, String(v.labels.pool ?? '')],
          ] as const) {
            const t = entry(map, key, totals);
            t.requests += v.value;
            if (cls === '5xx') t.errors += v.value;
          }
        }
        break;
      case 'lb_dp_request_duration_seconds':
        addHistogram(metric, 'route', reading.routes);
        break;
      case 'lb_dp_upstream_response_seconds':
        addHistogram(metric, 'pool', reading.pools);
        break;
      case 'lb_dp_backend_requests_total':
      case 'lb_dp_backend_response_seconds_total':
      case 'lb_dp_backend_responses_total':
        for (const v of metric.values) {
          const pool = String(v.labels.pool);
          const backend = String(v.labels.backend);
          const t = entry(reading.backends, `${pool}\u0000${backend}`, () => ({ ...totals(), pool, backend }));
          if (metric.name === 'lb_dp_backend_response_seconds_total') t.seconds += v.value;
          else if (metric.name === 'lb_dp_backend_responses_total') t.observed += v.value;
          else if (v.labels.outcome !== 'aborted') {
            t.requests += v.value;
            if (v.labels.outcome === '5xx' || v.labels.outcome === 'failed') t.errors += v.value;
          }
        }
        break;
    }
  }
  // Nothing matched (route "") or no pool was usable (pool ""): not a route or pool to report.
  reading.routes.delete('');
  reading.pools.delete('');
  return reading;
}

/** `now - before`, or `now` itself when the counter went back (a worker restarted). */
function delta(now: number, before: number | undefined): number {
  return before === undefined || now < before ? now : now - before;
}

function summary(pool: string, name: string, now: Totals, before: Totals | undefined, withLatency: boolean): TrafficSummary | undefined {
  const requests = delta(now.requests, before?.requests);
  if (requests <= 0) return undefined;
  const errors = Math.min(requests, delta(now.errors, before?.errors));
  const observed = delta(now.observed, before?.observed);
  const seconds = delta(now.seconds, before?.seconds);
  const meanMs = observed > 0 ? (seconds / observed) * 1000 : 0;
  if (!withLatency) return { pool, name, requests, errors, meanMs, latencyCounts: [] };
  // Cumulative bucket counts → counts per bucket within the window.
  const latencyCounts = now.buckets.map((c, i) => {
    const windowed = delta(c, before?.buckets[i]);
    const below = i === 0 ? 0 : delta(now.buckets[i - 1]!, before?.buckets[i - 1]);
    return Math.max(0, windowed - below);
  });
  return { pool, name, requests, errors, meanMs, latencyCounts };
}

/** Turns successive reads of a node's metrics into window reports. Not on the request path. */
export class TrafficSummarizer {
  private previous: Reading | undefined;

  /**
   * The report for the window since the previous call (the first call's window starts at the
   * process's start). `version` and `historyId` say what the node ran when the window closed.
   */
  summarize(metrics: readonly MetricJson[], at: number, version: number, historyId: string, startedAt: number): TrafficReport {
    const now = read(metrics, at);
    const before = this.previous;
    this.previous = now;
    const routes: TrafficSummary[] = [];
    for (const [name, t] of now.routes) {
      const s = summary('', name, t, before?.routes.get(name), true);
      if (s) routes.push(s);
    }
    const pools: TrafficSummary[] = [];
    for (const [name, t] of now.pools) {
      const s = summary('', name, t, before?.pools.get(name), true);
      if (s) pools.push(s);
    }
    const backends: TrafficSummary[] = [];
    for (const [key, t] of now.backends) {
      const s = summary(t.pool, t.backend, t, before?.backends.get(key), false);
      if (s) backends.push(s);
    }
    if (backends.length > MAX_REPORTED_BACKENDS) {
      backends.sort((a, b) => b.requests - a.requests);
      backends.length = MAX_REPORTED_BACKENDS;
    }
    return {
      windowMs: Math.max(0, Math.round(at - (before?.at ?? startedAt))),
      configVersion: version,
      historyId,
      latencyBoundsMs: BOUNDS_MS,
      routes,
      pools,
      backends,
    };
  }
}
