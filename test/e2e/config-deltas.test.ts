/**
 * Delta pushes end to end (issue 16): real etcd, a real control plane, a real data plane with two
 * workers and a simulated node that reports what each push held. A change sends only the resources
 * it changed; a node that was away catches up with one delta from the version it ran, or with the
 * full snapshot when the control plane no longer knows that version.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_ADMIN_TOKEN } from '../support/auth.js';
import { Backend } from '../support/backends.js';
import { EtcdServer } from '../support/etcd.js';
import { api, distribution, get } from '../support/http.js';
import { NodeFleet } from '../support/node-fleet.js';
import { ControlPlane, DataPlane } from '../support/planes.js';
import { waitFor } from '../support/wait.js';

let etcd: EtcdServer;
let cp: ControlPlane;
let dp: DataPlane;
let fleet: NodeFleet;
const backends: Backend[] = [];

async function metric(url: string, line: string): Promise<number> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
  const match = (await res.text()).split('\n').find((l) => l.startsWith(`${line} `));
  return match === undefined ? 0 : Number(match.slice(line.length + 1));
}

const configPushes = (mode: 'delta' | 'full') => metric(`${cp.url}/metrics`, `lb_cp_pushes_sent_total{kind="config",mode="${mode}"}`);

async function dpConfig(): Promise<{
  version: number;
  historyId: string;
  pools: Record<string, { backends: { id: string; weight: number }[] }>;
  routes: Record<string, unknown>;
}> {
  return (await fetch(`${dp.adminUrl}/config`)).json() as never;
}

beforeAll(async () => {
  etcd = await EtcdServer.start();
  cp = await ControlPlane.start({ etcd: etcd.url });
  for (const name of ['b1', 'b2', 'b3']) backends.push(await Backend.start(name));
  const [b1, b2, b3] = backends as [Backend, Backend, Backend];
  const written = await api('PUT', `${cp.url}/v1/config`, {
    pools: {
      web: {
        algorithm: 'weighted_round_robin',
        backends: [
          { id: 'b1', address: b1.address },
          { id: 'b2', address: b2.address },
        ],
      },
      api: { backends: [{ id: 'b3', address: b3.address }] },
    },
    routes: { web: { match: { host: 'web.test' }, pools: [{ pool: 'web' }] }, api: { match: { host: 'api.test' }, pools: [{ pool: 'api' }] } },
  });
  expect(written.status).toBe(200);
  dp = await DataPlane.start({ controlPlanes: [cp.grpcAddress], nodeId: 'dp-delta', workers: 2 });
  fleet = NodeFleet.start({ controlPlanes: [cp.grpcAddress], nodes: 1 });
  await fleet.converged(written.body.version);
  await waitFor(async () => (await dp.appliedVersion()) === written.body.version, { message: 'the data plane to run version 1' });
});

afterAll(async () => {
  await fleet?.stop();
  await dp?.stop();
  await cp?.stop();
  await Promise.all(backends.map((b) => b.close()));
  await etcd?.stop();
});

describe('delta pushes', () => {
  it('send only what changed, and the data plane (two workers) applies exactly that', async () => {
    const fullBefore = await configPushes('full');
    const deltaBefore = await configPushes('delta');
    const before = await dpConfig();
    const patched = await api('PATCH', `${cp.url}/v1/pools/web/backends/b2`, { weight: 3 });
    expect(patched.status).toBe(200);
    const [node] = await fleet.converged(patched.body.version);
    expect(node).toMatchObject({ delta: true, changed: ['pools/web'] });
    await waitFor(async () => (await dp.appliedVersion()) === patched.body.version, { message: 'the data plane to apply the delta' });
    const after = await dpConfig();
    expect(after.historyId).toBe(before.historyId);
    expect(after.pools.web!.backends.map((b) => [b.id, b.weight])).toEqual([
      ['b1', 1],
      ['b2', 3],
    ]);
    expect(after.pools.api).toEqual(before.pools.api);
    expect(after.routes).toEqual(before.routes);
    // Both nodes got a delta; nobody needed the full snapshot.
    expect(await configPushes('delta')).toBe(deltaBefore + 2);
    expect(await configPushes('full')).toBe(fullBefore);
    expect(await distribution(`${dp.url}/`, 8, { host: 'web.test' })).toEqual({ b1: 2, b2: 6 });
    expect(await distribution(`${dp.url}/`, 2, { host: 'api.test' })).toEqual({ b3: 2 });

    // Removals are deltas too.
    expect((await api('DELETE', `${cp.url}/v1/routes/api`)).status).toBe(200);
    const removed = await api('DELETE', `${cp.url}/v1/pools/api`);
    expect(removed.status).toBe(200);
    const [gone] = await fleet.converged(removed.body.version);
    expect(gone!.changed).toEqual(['-pools/api']);
    await waitFor(async () => (await dp.appliedVersion()) === removed.body.version, { message: 'the data plane to apply the removals' });
    expect(Object.keys((await dpConfig()).pools)).toEqual(['web']);
    expect((await get(`${dp.url}/`, { host: 'api.test' })).status).toBe(404);
    expect(await configPushes('full')).toBe(fullBefore);
  });

  it('bring a node that was away through several versions up to date with one delta, or the full snapshot once its version is forgotten', async () => {
    await dp.stop();
    let last = 0;
    for (let w = 1; w <= 3; w++) last = (await api('PATCH', `${cp.url}/v1/pools/web/backends/b1`, { weight: w + 1 })).body.version;
    await fleet.converged(last);
    const fullBefore = await configPushes('full');
    const deltaBefore = await configPushes('delta');
    await dp.restart(); // from its cache file: Hello says which version, history and digest it runs
    await waitFor(async () => (await dp.appliedVersion()) === last, { message: 'the returning node to catch up' });
    expect((await dpConfig()).pools.web!.backends[0]!.weight).toBe(4);
    expect(await configPushes('delta')).toBe(deltaBefore + 1);
    expect(await configPushes('full')).toBe(fullBefore);

    // Away for longer than the control plane remembers views (8): the full snapshot.
    await dp.stop();
    for (let w = 1; w <= 10; w++) last = (await api('PATCH', `${cp.url}/v1/pools/web/backends/b1`, { weight: w + 10 })).body.version;
    await fleet.converged(last);
    const fullAgain = await configPushes('full');
    await dp.restart();
    await waitFor(async () => (await dp.appliedVersion()) === last, { message: 'the node away for long to catch up' });
    expect((await dpConfig()).pools.web!.backends[0]!.weight).toBe(20);
    expect(await configPushes('full')).toBe(fullAgain + 1);
  });
});
