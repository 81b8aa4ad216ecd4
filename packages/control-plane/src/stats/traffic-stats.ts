/**
 * What the data planes' traffic looks like now: the latest TrafficReport of every node whose
 * stream this replica holds (nothing else is kept — a report replaces the node's previous one,
 * and goes with its stream), merged on demand into GET /v1/stats per node, route, pool and
 * backend. Nodes on other replicas are in those replicas' stats.
 *
 * Rates are per second over each node's window; error rates are errors per hundred requests;
 * percentiles come from the nodes' latency buckets added together, so a fleet's p99 is the p99 of
 * all its requests, not an average of the nodes' p99s.
 */
import type { TrafficReport, TrafficSummary } from '@lb/shared';
import { quantileMs } from './latency-quantile.js';

/** Entries (routes + pools + backends) past which a report is cut: a node cannot grow this replica's memory at will. */
export const MAX_REPORT_ENTRIES = 5_000;

/** Traffic of one thing over the nodes' latest windows. */
export interface TrafficFigures {
  requests: number;
  requestsPerSecond: number;
  errors: number;
  /** Errors per hundred requests (0 without requests). */
  errorRatePercent: number;
  meanMs: number;
  /** Absent for backends (they report a mean only). */
  p50Ms?: number;
  p90Ms?: number;
  p99Ms?: number;
}

export interface NodeStats extends TrafficFigures {
  id: string;
  configVersion: number;
  windowMs: number;
  /** ISO 8601: when this report arrived. */
  receivedAt: string;
}

export interface StatsView {
  nodes: NodeStats[];
  routes: Array<TrafficFigures & { route: string }>;
  pools: Array<TrafficFigures & { pool: string; backends: Array<TrafficFigures & { backend: string }> }>;
}

interface Held {
  owner: object;
  report: TrafficReport;
  receivedAt: number;
}

/** Sums of one thing across reports, turned into figures at the end. */
class Accumulator {
  requests = 0;
  errors = 0;
  perSecond = 0;
  weightedMeanMs = 0;
  counts: number[] = [];
  boundsMs: readonly number[] = [];
  latency = false;

  add(s: TrafficSummary, windowMs: number, boundsMs: readonly number[]): void {
    this.requests += s.requests;
    this.errors += s.errors;
    this.perSecond += windowMs > 0 ? (s.requests * 1000) / windowMs : 0;
    this.weightedMeanMs += s.meanMs * s.requests;
    if (s.latencyCounts.length === 0) return;
    if (!this.latency) {
      this.latency = true;
      this.boundsMs = boundsMs;
      this.counts = new Array<number>(s.latencyCounts.length).fill(0);
    }
    // Nodes of another release with other buckets cannot be added up: their latency is left out.
    if (s.latencyCounts.length !== this.counts.length || !sameBounds(boundsMs, this.boundsMs)) return;
    for (let i = 0; i < this.counts.length; i++) this.counts[i]! += s.latencyCounts[i]!;
  }

  figures(): TrafficFigures {
    const f: TrafficFigures = {
      requests: this.requests,
      requestsPerSecond: round(this.perSecond),
      errors: this.errors,
      errorRatePercent: this.requests > 0 ? round((this.errors * 100) / this.requests) : 0,
      meanMs: this.requests > 0 ? round(this.weightedMeanMs / this.requests) : 0,
    };
    if (!this.latency) return f;
    return {
      ...f,
      p50Ms: round(quantileMs(this.counts, this.boundsMs, 0.5)),
      p90Ms: round(quantileMs(this.counts, this.boundsMs, 0.9)),
      p99Ms: round(quantileMs(this.counts, this.boundsMs, 0.99)),
    };
  }
}

function sameBounds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

function accumulate(map: Map<string, Accumulator>, key: string): Accumulator {
  let a = map.get(key);
  if (a === undefined) {
    a = new Accumulator();
    map.set(key, a);
  }
  return a;
}

/** The same report with at most MAX_REPORT_ENTRIES entries (routes, then pools, then backends). */
function bounded(report: TrafficReport): TrafficReport {
  let room = MAX_REPORT_ENTRIES;
  const take = (list: TrafficSummary[]): TrafficSummary[] => {
    const kept = list.length <= room ? list : list.slice(0, room);
    room -= kept.length;
    return kept;
  };
  return { ...report, routes: take(report.routes), pools: take(report.pools), backends: take(report.backends) };
}

export class TrafficStats {
  private readonly latest = new Map<string, Held>();

  constructor(private readonly now: () => number = Date.now) {}

  /** `node`'s newest report, from the stream `owner` (the only one that may later forget it). */
  record(node: string, owner: object, report: TrafficReport): void {
    this.latest.set(node, { owner, report: bounded(report), receivedAt: this.now() });
  }

  /** The stream `owner` ended: its node's report goes, unless a newer stream of the node replaced it. */
  forget(node: string, owner: object): void {
    if (this.latest.get(node)?.owner === owner) this.latest.delete(node);
  }

  /** The newest report of each node held, by node id. */
  reports(): ReadonlyMap<string, { report: TrafficReport; receivedAt: number }> {
    return this.latest;
  }

  view(): StatsView {
    const nodes: NodeStats[] = [];
    const routes = new Map<string, Accumulator>();
    const pools = new Map<string, Accumulator>();
    const backends = new Map<string, Map<string, Accumulator>>();
    for (const [id, { report, receivedAt }] of [...this.latest].sort(([a], [b]) => a.localeCompare(b))) {
      const node = new Accumulator();
      for (const s of report.routes) {
        node.add(s, report.windowMs, report.latencyBoundsMs);
        accumulate(routes, s.name).add(s, report.windowMs, report.latencyBoundsMs);
      }
      for (const s of report.pools) accumulate(pools, s.name).add(s, report.windowMs, report.latencyBoundsMs);
      for (const s of report.backends) {
        let of = backends.get(s.pool);
        if (of === undefined) {
          of = new Map();
          backends.set(s.pool, of);
        }
        accumulate(of, s.name).add(s, report.windowMs, report.latencyBoundsMs);
      }
      nodes.push({ id, configVersion: report.configVersion, windowMs: report.windowMs, receivedAt: new Date(receivedAt).toISOString(), ...node.figures() });
    }
    const sorted = <T>(map: Map<string, T>): Array<[string, T]> => [...map].sort(([a], [b]) => a.localeCompare(b));
    const poolNames = new Set([...pools.keys(), ...backends.keys()]);
    return {
      nodes,
      routes: sorted(routes).map(([route, a]) => ({ route, ...a.figures() })),
      pools: [...poolNames].sort().map((pool) => ({
        pool,
        ...(pools.get(pool) ?? new Accumulator()).figures(),
        backends: sorted(backends.get(pool) ?? new Map<string, Accumulator>()).map(([backend, a]) => ({ backend, ...a.figures() })),
      })),
    };
  }
}
