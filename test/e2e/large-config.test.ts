/**
 * A config of 100,000 backends, one pool of them 50,000 (issue 16): written, pushed, changed by
 * one backend, rolled back and pruned, with real etcd, control plane and data plane. No etcd value
 * comes near etcd's request limit, a one-backend change reaches the nodes as a delta of that pool,
 * and retention leaves no stored object unreferenced. A config over the project's limit gets 413.
 */
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../packages/shared/dist/index.js';
import { EtcdConfigStore } from '../../packages/control-plane/src/store/etcd-config-store.js';
import { Backend } from '../support/backends.js';
import { EtcdServer } from '../support/etcd.js';
import { api, get } from '../support/http.js';
import { NodeFleet } from '../support/node-fleet.js';
import { ControlPlane, DataPlane } from '../support/planes.js';
import { waitFor } from '../support/wait.js';

let etcd: EtcdServer;
let cp: ControlPlane;
let dp: DataPlane | undefined;
let fleet: NodeFleet | undefined;
let live: Backend;

function pool(name: string, size: number, weightOf: (i: number) => number = () => 1) {
  const p = name.length;
  return {
    algorithm: 'round_robin',
    backends: Array.from({ length: size }, (_, i) => ({
      id: `${name}-${i}`,
      address: `10.${p}.${(i >> 8) & 255}.${i & 255}:${1000 + (i >> 16)}`,
      weight: weightOf(i),
    })),
  };
}

/** 100,000 backends: one pool of 50,000, fifty of 1,000, and a small pool with a real backend to serve from. */
function largeConfig(bigWeight: (i: number) => number = () => 1) {
  const pools: Record<string, unknown> = { big: pool('big', 50_000, bigWeight), live: { backends: [{ id: 'live', address: live.address }] } };
  for (let p = 0; p < 50; p++) pools[`pool-${p}`] = pool(`pool-${p}`, 1_000);
  return { pools, routes: { all: { pools: [{ pool: 'live' }] } } };
}

async function objectKeys(): Promise<string[]> {
  const client = new Etcd3({ hosts: etcd.url });
  try {
    return await client.getAll().prefix('/lb/config/objects/').keys();
  } finally {
    client.close();
  }
}

beforeAll(async () => {
  etcd = await EtcdServer.start();
  cp = await ControlPlane.start({ etcd: etcd.url, extraArgs: ['--keep-versions', '2'] });
  live = await Backend.start('live');
});

afterAll(async () => {
  await fleet?.stop();
  await dp?.stop();
  await cp?.stop();
  await live?.close();
  await etcd?.stop();
});

describe('a config of 100,000 backends', () => {
  it('is written, pushed, changed by a delta, rolled back and pruned', async () => {
    const written = await api('PUT', `${cp.url}/v1/config`, largeConfig());
    expect(written.status).toBe(200);
    const v1 = written.body.version as number;
    // No stored value comes near etcd's 1.5 MiB request limit.
    const client = new Etcd3({ hosts: etcd.url, grpcOptions: { 'grpc.max_receive_message_length': 64 * 1024 * 1024 } });
    try {
      const values = await client.getAll().prefix('/lb/').buffers();
      expect(Math.max(...Object.values(values).map((v) => v.length))).toBeLessThan(1024 * 1024);
    } finally {
      client.close();
    }

    dp = await DataPlane.start({ controlPlanes: [cp.grpcAddress], nodeId: 'dp-large', waitReady: false });
    fleet = NodeFleet.start({ controlPlanes: [cp.grpcAddress], nodes: 1 });
    await fleet.converged(v1, 60_000);
    await waitFor(async () => (await dp!.appliedVersion()) === v1, { timeoutMs: 60_000, message: 'the data plane to apply 100,000 backends' });
    const applied = (await (await fetch(`${dp.adminUrl}/config`)).json()) as { pools: Record<string, { backends: unknown[] }> };
    expect(Object.values(applied.pools).reduce((n, p) => n + p.backends.length, 0)).toBe(100_001);
    expect(applied.pools.big!.backends).toHaveLength(50_000);
    expect((await get(`${dp.url}/`)).body.trim()).toBe('live');

    // One backend of the 50,000-backend pool: a delta of that pool only.
    const changed = await api('PATCH', `${cp.url}/v1/pools/big/backends/big-25000`, { weight: 9 });
    expect(changed.status).toBe(200);
    const [node] = await fleet.converged(changed.body.version, 60_000);
    expect(node).toMatchObject({ delta: true, changed: ['pools/big'] });
    await waitFor(async () => (await dp!.appliedVersion()) === changed.body.version, { timeoutMs: 30_000, message: 'the data plane to apply the delta' });

    // Rolled back: version 3 equals version 1.
    const rolled = await api('POST', `${cp.url}/v1/versions/${v1}/rollback`);
    expect(rolled.status).toBe(200);
    await fleet.converged(rolled.body.version, 60_000);
    await waitFor(async () => (await dp!.appliedVersion()) === rolled.body.version, { timeoutMs: 30_000, message: 'the data plane to apply the rollback' });
    const back = (await (await fetch(`${dp.adminUrl}/config`)).json()) as { pools: Record<string, { backends: Array<{ weight: number }> }> };
    expect(back.pools.big!.backends[25_000]!.weight).toBe(1);

    // Pruned (--keep-versions 2): the versions go, and so does every object only they referred to.
    const objectsBefore = await objectKeys();
    const last = await api('PATCH', `${cp.url}/v1/pools/live/backends/live`, { weight: 2 });
    expect(last.status).toBe(200);
    await waitFor(async () => (await api('GET', `${cp.url}/v1/versions/${changed.body.version}`)).status === 410, {
      timeoutMs: 20_000,
      message: 'version 2 to be pruned',
    });
    expect((await api('GET', `${cp.url}/v1/versions/${v1}`)).status).toBe(410);
    await waitFor(async () => (await objectKeys()).length < objectsBefore.length, { timeoutMs: 20_000, message: 'the objects only version 2 held to go' });
    // What is left is exactly what the remaining versions refer to: another collection finds nothing.
    const etcdClient = new Etcd3({ hosts: etcd.url });
    try {
      const store = new EtcdConfigStore({ client: etcdClient, prefix: '/lb', logger: createLogger('test', 'silent') });
      expect(await store.collectGarbage()).toBe(0);
      expect((await store.getVersion(rolled.body.version))?.config.pools.big?.backends).toHaveLength(50_000);
    } finally {
      etcdClient.close();
    }
  });

  it('over the project limit (--max-config-bytes) gets 413 and changes nothing', async () => {
    const small = await ControlPlane.start({ etcd: etcd.url, prefix: '/small', extraArgs: ['--max-config-bytes', String(1024 * 1024)] });
    try {
      const ok = await api('PUT', `${small.url}/v1/config`, { pools: { p: pool('p', 1_000) }, routes: {} });
      expect(ok.status).toBe(200);
      const tooLarge = await api('PUT', `${small.url}/v1/config`, { pools: { p: pool('p', 20_000) }, routes: {} });
      expect(tooLarge.status).toBe(413);
      expect(tooLarge.headers['content-type']).toMatch(/application\/problem\+json/);
      expect(tooLarge.body).toMatchObject({ code: 'LB_CP_PAYLOAD_TOO_LARGE', limit: 1024 * 1024 });
      expect(tooLarge.body.bytes).toBeGreaterThan(1024 * 1024);
      const after = await api('GET', `${small.url}/v1/config`);
      expect(after.body.version).toBe(ok.body.version);
      expect(after.body.config.pools.p.backends).toHaveLength(1_000);
      expect((await api('GET', `${small.url}/readyz`)).status).toBe(200);
    } finally {
      await small.stop();
    }
  });
});
