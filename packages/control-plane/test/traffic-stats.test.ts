import type { TrafficReport, TrafficSummary } from '@lb/shared';
import { describe, expect, it } from 'vitest';
import { quantileMs } from '../src/stats/latency-quantile.js';
import { MAX_REPORT_ENTRIES, TrafficStats } from '../src/stats/traffic-stats.js';

const BOUNDS = [1, 10, 100];

function summary(name: string, requests: number, errors: number, counts: number[], pool = ''): TrafficSummary {
  return { pool, name, requests, errors, meanMs: 5, latencyCounts: counts };
}

function report(version: number, routes: TrafficSummary[], backends: TrafficSummary[] = []): TrafficReport {
  return { windowMs: 2_000, configVersion: version, historyId: 'h', latencyBoundsMs: BOUNDS, routes, pools: [], backends };
}

describe('quantileMs', () => {
  it('interpolates within the bucket, as histogram_quantile does', () => {
    expect(quantileMs([0, 0, 0, 0], BOUNDS, 0.99)).toBe(0);
    expect(quantileMs([10, 0, 0, 0], BOUNDS, 0.5)).toBe(0.5);
    expect(quantileMs([0, 10, 0, 0], BOUNDS, 0.5)).toBe(5.5);
    // Above every bound: only the last bound is known.
    expect(quantileMs([0, 0, 0, 10], BOUNDS, 0.99)).toBe(100);
  });
});

describe('TrafficStats', () => {
  it('merges the latest report of each node into figures per node, route, pool and backend', () => {
    const stats = new TrafficStats(() => 0);
    const streamA = {};
    stats.record('a', streamA, report(1, [summary('site', 100, 0, [100, 0, 0, 0])]));
    // A newer report replaces the node's previous one.
    stats.record('a', streamA, report(2, [summary('site', 100, 10, [90, 0, 10, 0])], [summary('web-1', 100, 10, [], 'web')]));
    stats.record('b', {}, report(1, [summary('site', 300, 0, [300, 0, 0, 0])]));
    const view = stats.view();
    expect(view.nodes.map((n) => [n.id, n.configVersion, n.requests, n.errorRatePercent, n.requestsPerSecond])).toEqual([
      ['a', 2, 100, 10, 50],
      ['b', 1, 300, 0, 150],
    ]);
    // Buckets are added up: the p99 of all 400 requests, not an average of the nodes' p99s.
    const site = view.routes[0]!;
    expect(site).toMatchObject({ route: 'site', requests: 400, errors: 10, errorRatePercent: 2.5, requestsPerSecond: 200 });
    expect(site.p99Ms).toBeGreaterThan(10);
    expect(site.p50Ms).toBeLessThan(1);
    expect(view.pools).toEqual([expect.objectContaining({ pool: 'web', backends: [expect.objectContaining({ backend: 'web-1', errorRatePercent: 10 })] })]);
    expect(view.pools[0]!.backends[0]!.p99Ms).toBeUndefined();
  });

  it('drops a node with its stream, but not when a newer stream of the node took over', () => {
    const stats = new TrafficStats();
    const old = {};
    const newer = {};
    stats.record('a', old, report(1, []));
    stats.record('a', newer, report(1, []));
    stats.forget('a', old);
    expect(stats.view().nodes).toHaveLength(1);
    stats.forget('a', newer);
    expect(stats.view().nodes).toHaveLength(0);
  });

  it('keeps at most MAX_REPORT_ENTRIES entries of one report', () => {
    const stats = new TrafficStats();
    const many = Array.from({ length: MAX_REPORT_ENTRIES + 10 }, (_, i) => summary(`b${i}`, 1, 0, [], 'big'));
    stats.record('a', {}, report(1, [], many));
    expect(stats.view().pools[0]!.backends).toHaveLength(MAX_REPORT_ENTRIES);
  });
});
