// Traffic summaries at the control plane (issue 15, point 2): two data planes (one with two
// workers) report their traffic over the stream every second; after known traffic GET /v1/stats
// shows it per node, route, pool and backend — request counts, error rates, latency percentiles —
// and a node's figures go with its stream.
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backend } from '../support/backends.js';
import { EtcdServer } from '../support/etcd.js';
import { api, apiAs } from '../support/http.js';
import { ControlPlane, DataPlane } from '../support/planes.js';
import { waitFor } from '../support/wait.js';

let etcd: EtcdServer;
let cp: ControlPlane;
let dp1: DataPlane;
let dp2: DataPlane;
let a: Backend;
let b: Backend;

const REPORT = ['--traffic-report-ms', '1000'];

beforeAll(async () => {
  etcd = await EtcdServer.start();
  cp = await ControlPlane.start({ etcd: etcd.url });
  [a, b] = await Promise.all([Backend.start('a'), Backend.start('b')]);
  const res = await api('PUT', `${cp.url}/v1/config`, {
    pools: {
      web: { backends: [{ id: 'a', address: a.address }] },
      api: { backends: [{ id: 'b', address: b.address }] },
    },
    routes: {
      site: { match: { pathPrefix: '/' }, pools: [{ pool: 'web' }] },
      apis: { match: { pathPrefix: '/api' }, pools: [{ pool: 'api' }] },
    },
  });
  expect(res.status).toBe(200);
  [dp1, dp2] = await Promise.all([
    DataPlane.start({ controlPlanes: [cp.grpcAddress], nodeId: 'dp-1', extraArgs: REPORT }),
    // Two workers: the primary reports what their metrics add up to.
    DataPlane.start({ controlPlanes: [cp.grpcAddress], nodeId: 'dp-2', extraArgs: REPORT, workers: 2 }),
  ]);
});

afterAll(async () => {
  await Promise.allSettled([dp1?.stop(), dp2?.stop()]);
  await cp?.stop();
  await Promise.allSettled([a?.close(), b?.close()]);
  await etcd?.stop();
});

async function send(dp: DataPlane, path: string, times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    const res = await request(`${dp.url}${path}`);
    await res.body.dump();
  }
}

interface Figures {
  requests: number;
  errors: number;
  errorRatePercent: number;
  requestsPerSecond: number;
  p99Ms?: number;
}
interface Stats {
  nodes: Array<Figures & { id: string; configVersion: number; receivedAt: string }>;
  routes: Array<Figures & { route: string }>;
  pools: Array<Figures & { pool: string; backends: Array<Figures & { backend: string }> }>;
}

const stats = async (): Promise<Stats> => (await api('GET', `${cp.url}/v1/stats`)).body as Stats;

/**
 * Adds up every window reported after `send` started, polling faster than the nodes report, until
 * `done` holds: a burst may straddle two windows, never vanish between them. Each node here serves
 * routes and pools of its own, so a node's new window carries exactly its routes' figures.
 */
async function windowsOf(
  send: () => Promise<void>,
  owns: Record<string, string[]>,
  done: (sum: Map<string, Figures>) => boolean,
): Promise<Map<string, Figures>> {
  const seen = new Set((await stats()).nodes.map((n) => `${n.id}@${n.receivedAt}`));
  await send();
  const sum = new Map<string, Figures>();
  const add = (key: string, f: Figures | undefined): void => {
    if (f === undefined) return;
    const t = sum.get(key) ?? { requests: 0, errors: 0, errorRatePercent: 0, requestsPerSecond: 0 };
    t.requests += f.requests;
    t.errors += f.errors;
    if (f.p99Ms !== undefined) t.p99Ms = Math.max(t.p99Ms ?? 0, f.p99Ms);
    sum.set(key, t);
  };
  await waitFor(
    async () => {
      const body = await stats();
      for (const n of body.nodes) {
        if (seen.has(`${n.id}@${n.receivedAt}`)) continue;
        seen.add(`${n.id}@${n.receivedAt}`);
        add(`node:${n.id}`, n);
        for (const key of owns[n.id] ?? []) {
          const [kind, name, backend] = key.split(':');
          if (kind === 'route')
            add(
              key,
              body.routes.find((r) => r.route === name),
            );
          const pool = body.pools.find((p) => p.pool === name);
          if (kind === 'pool') add(key, pool);
          if (kind === 'backend')
            add(
              key,
              pool?.backends.find((b) => b.backend === backend),
            );
        }
      }
      return done(sum);
    },
    { message: 'the traffic in the reports', timeoutMs: 15_000, intervalMs: 100 },
  );
  return sum;
}

describe('GET /v1/stats', () => {
  it('shows what the nodes served, per node, route, pool and backend', async () => {
    const owns = {
      'dp-1': ['route:site', 'pool:web', 'backend:web:a'],
      'dp-2': ['route:apis', 'pool:api', 'backend:api:b'],
    };
    const sum = await windowsOf(
      () => Promise.all([send(dp1, '/ok', 30), send(dp1, '/status/500', 10), send(dp2, '/api/x', 20)]).then(() => undefined),
      owns,
      (s) => s.get('node:dp-1')?.requests === 40 && s.get('node:dp-2')?.requests === 20,
    );
    expect(sum.get('node:dp-1')).toMatchObject({ requests: 40, errors: 10 });
    expect(sum.get('route:site')).toMatchObject({ requests: 40, errors: 10 });
    expect(sum.get('route:site')!.p99Ms).toBeGreaterThan(0);
    expect(sum.get('pool:web')).toMatchObject({ requests: 40, errors: 10 });
    expect(sum.get('pool:web')!.p99Ms).toBeGreaterThan(0);
    expect(sum.get('backend:web:a')).toMatchObject({ requests: 40, errors: 10 });
    expect(sum.get('route:apis')).toMatchObject({ requests: 20, errors: 0 });
    expect(sum.get('backend:api:b')).toMatchObject({ requests: 20, errors: 0 });
    const now = await stats();
    expect(now.nodes.map((n) => n.id)).toEqual(['dp-1', 'dp-2']);
    expect(now.nodes[0]).toMatchObject({ configVersion: 1 });
  });

  it('says what share of requests failed in one window', async () => {
    // Windows of 1 s and 40 requests sent well within one: some window holds them all.
    await waitFor(
      async () => {
        await Promise.all([send(dp1, '/ok', 30), send(dp1, '/status/500', 10)]);
        const n = await waitFor(async () => (await stats()).nodes.find((x) => x.id === 'dp-1' && x.requests > 0), { message: 'a window with traffic' });
        return n.requests === 40 && n.errors === 10 && n.errorRatePercent === 25 && n.requestsPerSecond > 0;
      },
      { message: 'one window holding one burst: 25 % errors', timeoutMs: 15_000, intervalMs: 1_200 },
    );
  });

  it('needs a token, and forgets a node whose stream ended', async () => {
    expect((await apiAs(null, 'GET', `${cp.url}/v1/stats`)).status).toBe(401);
    await dp2.stop();
    await waitFor(async () => !(await stats()).nodes.some((n) => n.id === 'dp-2'), { message: "dp-2's report dropped with its stream" });
  });
});
