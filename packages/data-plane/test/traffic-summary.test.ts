import { describe, expect, it } from 'vitest';
import { LATENCY_BUCKETS } from '../src/metrics/histogram.js';
import { type MetricJson, TrafficSummarizer } from '../src/metrics/traffic-summary.js';

/** The metrics of a node that served `ok` 2xx and `failed` 5xx on route site → pool web → backend a, `fast` of them in the first bucket. */
function metrics(ok: number, failed: number, fast: number): MetricJson[] {
  const total = ok + failed;
  const buckets = LATENCY_BUCKETS.map((le) => ({ value: fast, labels: { route: 'site', le }, metricName: 'lb_dp_request_duration_seconds_bucket' }));
  buckets[buckets.length - 1]!.value = total;
  return [
    {
      name: 'lb_dp_requests_total',
      values: [
        { value: ok, labels: { route: 'site', pool: 'web', status_class: '2xx' } },
        { value: failed, labels: { route: 'site', pool: 'web', status_class: '5xx' } },
        { value: 7, labels: { route: 'site', pool: 'web', status_class: 'aborted' } },
        { value: 3, labels: { route: '', pool: '', status_class: '4xx' } },
      ],
    },
    {
      name: 'lb_dp_request_duration_seconds',
      values: [
        ...buckets,
        { value: total, labels: { route: 'site', le: '+Inf' }, metricName: 'lb_dp_request_duration_seconds_bucket' },
        { value: total * 0.01, labels: { route: 'site' }, metricName: 'lb_dp_request_duration_seconds_sum' },
        { value: total, labels: { route: 'site' }, metricName: 'lb_dp_request_duration_seconds_count' },
      ],
    },
    {
      name: 'lb_dp_backend_requests_total',
      values: [
        { value: ok, labels: { pool: 'web', backend: 'a', outcome: '2xx' } },
        { value: failed, labels: { pool: 'web', backend: 'a', outcome: 'failed' } },
      ],
    },
    { name: 'lb_dp_backend_response_seconds_total', values: [{ value: ok * 0.002, labels: { pool: 'web', backend: 'a' } }] },
    { name: 'lb_dp_backend_responses_total', values: [{ value: ok, labels: { pool: 'web', backend: 'a' } }] },
  ];
}

describe('TrafficSummarizer', () => {
  it('reports what happened between two reads, per route, pool and backend', () => {
    const s = new TrafficSummarizer();
    const first = s.summarize(metrics(10, 0, 10), 2_000, 3, 'h', 0);
    expect(first).toMatchObject({ windowMs: 2_000, configVersion: 3, historyId: 'h' });
    expect(first.routes).toEqual([expect.objectContaining({ name: 'site', requests: 10, errors: 0 })]);
    const second = s.summarize(metrics(40, 10, 10), 7_000, 4, 'h', 0);
    expect(second.windowMs).toBe(5_000);
    // Aborted requests are neither answers nor errors; route "" (nothing matched) is not a route.
    expect(second.routes).toEqual([expect.objectContaining({ pool: '', name: 'site', requests: 40, errors: 10 })]);
    expect(second.pools).toEqual([expect.objectContaining({ name: 'web', requests: 40, errors: 10 })]);
    const route = second.routes[0]!;
    // The 40 new requests were all above the first bucket: the window's counts say so.
    expect(route.latencyCounts[0]).toBe(0);
    expect(route.latencyCounts.reduce((a, b) => a + b, 0)).toBe(40);
    expect(route.meanMs).toBeCloseTo(10);
    expect(second.latencyBoundsMs).toEqual(LATENCY_BUCKETS.map((b) => b * 1000));
    expect(second.backends).toEqual([expect.objectContaining({ pool: 'web', name: 'a', requests: 40, errors: 10, latencyCounts: [] })]);
    expect(second.backends[0]!.meanMs).toBeCloseTo(2);
  });

  it('leaves out what had no traffic, and survives counters going back (a worker restarted)', () => {
    const s = new TrafficSummarizer();
    s.summarize(metrics(10, 0, 10), 1_000, 1, 'h', 0);
    expect(s.summarize(metrics(10, 0, 10), 2_000, 1, 'h', 0)).toMatchObject({ routes: [], pools: [], backends: [] });
    expect(s.summarize(metrics(4, 0, 4), 3_000, 1, 'h', 0).routes).toEqual([expect.objectContaining({ requests: 4 })]);
  });
});
