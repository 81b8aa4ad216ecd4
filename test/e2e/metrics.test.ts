// Data-plane metrics that answer questions (issue 15, point 1), scraped from a data-plane process
// with two workers after known traffic: per-route and per-backend counters by status class and
// outcome, latency histograms (total and upstream), requests in flight, eligibility, ejection and
// breaker state per backend, retries per backend, pool-level series, the applied version and its
// time — and a pool above --metrics-backend-limit that exports pool-level series only.
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backend } from '../support/backends.js';
import { EtcdServer } from '../support/etcd.js';
import { api } from '../support/http.js';
import { ControlPlane, DataPlane } from '../support/planes.js';
import { waitFor } from '../support/wait.js';

let etcd: EtcdServer;
let cp: ControlPlane;
let dp: DataPlane;
let a: Backend;
let b: Backend;
let version = 0;

beforeAll(async () => {
  etcd = await EtcdServer.start();
  cp = await ControlPlane.start({ etcd: etcd.url });
  [a, b] = await Promise.all([Backend.start('a'), Backend.start('b')]);
  // 150 backends nothing routes to: above the limit of 100, so only pool-level series.
  const many = Array.from({ length: 150 }, (_, i) => ({ id: `m${i}`, address: `127.0.0.1:${20000 + i}` }));
  const res = await api('PUT', `${cp.url}/v1/config`, {
    pools: {
      web: {
        backends: [
          { id: 'a', address: a.address },
          { id: 'b', address: b.address },
        ],
        circuitBreaker: {
          maxConnections: 1024,
          maxPendingRequests: 1024,
          maxRequests: 1024,
          perBackend: { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024 },
          errorRate: { thresholdPercent: 90, minRequests: 1000, windowMs: 10000, openMs: 5000, trialRequests: 3 },
        },
      },
      big: { backends: many },
    },
    routes: {
      site: { match: { pathPrefix: '/' }, pools: [{ pool: 'web' }] },
      unused: { match: { pathPrefix: '/big' }, pools: [{ pool: 'big' }] },
    },
  });
  expect(res.status).toBe(200);
  version = res.body.version;
  dp = await DataPlane.start({ controlPlanes: [cp.grpcAddress], nodeId: 'dp-metrics', workers: 2 });
  await waitFor(async () => (await dp.appliedVersion()) === version, { message: 'the config applied' });
});

afterAll(async () => {
  await dp?.stop();
  await cp?.stop();
  await Promise.allSettled([a?.close(), b?.close()]);
  await etcd?.stop();
});

/** Every sample of the scrape: `name{labels}` → value (labels in the order exposed). */
async function scrape(): Promise<Map<string, number>> {
  const text = await (await request(`${dp.adminUrl}/metrics`)).body.text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

/** The value of `name` whose labels include all of `labels` (0 when none; the sum when several). */
function value(samples: Map<string, number>, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const [key, v] of samples) {
    const brace = key.indexOf('{');
    if ((brace < 0 ? key : key.slice(0, brace)) !== name) continue;
    if (Object.entries(labels).every(([k, want]) => key.includes(`${k}="${want}"`))) sum += v;
  }
  return sum;
}

describe('data-plane metrics after known traffic', () => {
  it('count requests by route, pool, backend and outcome, and time them', async () => {
    for (let i = 0; i < 20; i++) {
      const res = await request(`${dp.url}/ok/${i}`);
      await res.body.dump();
      expect(res.statusCode).toBe(200);
    }
    for (let i = 0; i < 6; i++) {
      const res = await request(`${dp.url}/status/404`);
      await res.body.dump();
    }
    const m = await scrape();
    expect(value(m, 'lb_dp_requests_total', { route: 'site', pool: 'web', status_class: '2xx' })).toBe(20);
    expect(value(m, 'lb_dp_requests_total', { route: 'site', pool: 'web', status_class: '4xx' })).toBe(6);
    const perBackend = ['a', 'b'].map((x) => value(m, 'lb_dp_backend_requests_total', { pool: 'web', backend: x, outcome: '2xx' }));
    expect(perBackend[0]! + perBackend[1]!).toBe(20);
    // Two workers, each round robin on its own: both backends got traffic.
    expect(perBackend[0]).toBeGreaterThan(0);
    expect(perBackend[1]).toBeGreaterThan(0);
    expect(value(m, 'lb_dp_backend_responses_total', { pool: 'web' })).toBe(26);
    expect(value(m, 'lb_dp_backend_response_seconds_total', { pool: 'web' })).toBeGreaterThan(0);
    // Histograms: every request once, buckets cumulative, +Inf equal to the count.
    expect(value(m, 'lb_dp_request_duration_seconds_count', { route: 'site' })).toBe(26);
    expect(value(m, 'lb_dp_upstream_response_seconds_count', { pool: 'web' })).toBe(26);
    expect(value(m, 'lb_dp_request_duration_seconds_bucket', { route: 'site', le: '+Inf' })).toBe(26);
    expect(value(m, 'lb_dp_request_duration_seconds_bucket', { route: 'site', le: '0.001' })).toBeLessThanOrEqual(
      value(m, 'lb_dp_request_duration_seconds_bucket', { route: 'site', le: '0.1' }),
    );
    expect(value(m, 'lb_dp_request_duration_seconds_sum', { route: 'site' })).toBeGreaterThan(0);
  });

  it('show the state of each backend and pool', async () => {
    const m = await scrape();
    expect(value(m, 'lb_dp_backend_active_requests', { pool: 'web', backend: 'a' })).toBe(0);
    expect(value(m, 'lb_dp_backend_eligible', { pool: 'web', backend: 'a' })).toBe(1);
    expect(value(m, 'lb_dp_backend_ejected', { pool: 'web', backend: 'b' })).toBe(0);
    expect(m.has('lb_dp_backend_circuit_state{pool="web",backend="a"}')).toBe(true);
    expect(value(m, 'lb_dp_backend_circuit_state', { pool: 'web', backend: 'a' })).toBe(0);
    expect(value(m, 'lb_dp_pool_backends', { pool: 'web', state: 'eligible' })).toBe(2);
    expect(value(m, 'lb_dp_pool_panic', { pool: 'web' })).toBe(0);
    expect(value(m, 'lb_dp_upstream_connections', { address: a.address })).toBeGreaterThan(0);
    expect(value(m, 'lb_dp_config_version')).toBe(version);
    expect(value(m, 'lb_dp_config_applied_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 600);
  });

  it('keep a pool above --metrics-backend-limit to pool-level series', async () => {
    const m = await scrape();
    expect(value(m, 'lb_dp_pool_backends', { pool: 'big', state: 'total' })).toBe(150);
    const perBackend = [...m.keys()].filter((k) => k.startsWith('lb_dp_backend_') && k.includes('pool="big"'));
    expect(perBackend).toEqual([]);
  });

  it('count per backend the failed attempts that were retried', async () => {
    const before = value(await scrape(), 'lb_dp_backend_retries_total', { pool: 'web' });
    await b.close();
    let retried = 0;
    for (let i = 0; i < 10; i++) {
      const res = await request(`${dp.url}/after-close/${i}`);
      await res.body.dump();
      expect(res.statusCode).toBe(200);
    }
    const m = await scrape();
    retried = value(m, 'lb_dp_backend_retries_total', { pool: 'web', backend: 'b' });
    expect(retried).toBeGreaterThan(before);
    expect(value(m, 'lb_dp_backend_requests_total', { pool: 'web', backend: 'b', outcome: 'failed' })).toBe(retried);
  });
});
