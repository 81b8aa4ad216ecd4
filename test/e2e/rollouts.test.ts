// Staged rollouts with automatic rollback (issue 15, point 3), against one etcd, one control plane
// and three data-plane processes reporting traffic every 300 ms: a staged write reaches no node; a
// good version rolls through every step; a bad one (its backend answers 500 only under the new
// config) is rolled back on every node by itself with no failed request on the nodes outside the
// step; a version a node NACKs stops at the first step, and so does one it does not run within
// abortOn.ackTimeoutSeconds; a control-plane restart mid-rollout
// resumes it; pause, resume and abort do what they say; with a second replica, the node it holds
// gets the version and its errors reach whichever replica drives.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backend } from '../support/backends.js';
import { EtcdServer } from '../support/etcd.js';
import { api } from '../support/http.js';
import { load } from '../support/load.js';
import { ControlPlane, DataPlane } from '../support/planes.js';
import { waitFor } from '../support/wait.js';

let etcd: EtcdServer;
let cp: ControlPlane;
let cpB: ControlPlane | undefined;
let dps: DataPlane[] = [];
let good: Backend;
let bad: Server;
let badAddress = '';

interface Rollout {
  id: string;
  version: number;
  baseline: number;
  state: string;
  step: number;
  canaries: string[];
  reason: string | null;
  rollbackVersion: number | null;
}

beforeAll(async () => {
  etcd = await EtcdServer.start();
  cp = await ControlPlane.start({ etcd: etcd.url });
  good = await Backend.start('good');
  // A backend that fails every request: what a bad config sends traffic to.
  bad = createServer((_req, res) => {
    res.writeHead(500, { 'content-type': 'text/plain' }).end('broken\n');
  });
  await new Promise<void>((resolve) => bad.listen(0, '127.0.0.1', resolve));
  badAddress = `127.0.0.1:${(bad.address() as AddressInfo).port}`;
  const res = await api('PUT', `${cp.url}/v1/config`, {
    pools: { web: { backends: [{ id: 'good', address: good.address }] } },
    routes: { site: { match: { pathPrefix: '/' }, pools: [{ pool: 'web' }] } },
  });
  expect(res.status).toBe(200);
  dps = await Promise.all(
    ['dp-1', 'dp-2', 'dp-3'].map((nodeId) => DataPlane.start({ controlPlanes: [cp.grpcAddress], nodeId, extraArgs: ['--traffic-report-ms', '300'] })),
  );
});

afterAll(async () => {
  await Promise.allSettled(dps.map((dp) => dp.stop()));
  await cp?.stop();
  await cpB?.stop();
  await Promise.allSettled([good?.close(), new Promise((resolve) => bad?.close(resolve))]);
  await etcd?.stop();
});

const versions = (): Promise<number[]> => Promise.all(dps.map((dp) => dp.appliedVersion()));

async function current(): Promise<number> {
  return (await api('GET', `${cp.url}/v1/config`)).body.version as number;
}

async function rollout(id: string): Promise<Rollout> {
  return (await api('GET', `${cp.url}/v1/rollouts/${id}`)).body as Rollout;
}

/** Stages `pool` as the web pool's backends; answers the staged version. */
async function stage(backends: unknown[]): Promise<number> {
  const res = await api('PUT', `${cp.url}/v1/pools/web/backends?stage=true`, backends);
  expect(res.status).toBe(200);
  expect(res.body).toMatchObject({ committed: true, staged: true });
  return res.body.version as number;
}

async function start(version: number, body: unknown): Promise<Rollout> {
  const res = await api('POST', `${cp.url}/v1/versions/${version}/rollout`, body);
  expect(res.status).toBe(201);
  expect(res.headers.location).toBe(`/v1/rollouts/${res.body.id}`);
  return res.body as Rollout;
}

async function settled(id: string, state: 'done' | 'aborted'): Promise<Rollout> {
  return waitFor(
    async () => {
      const r = await rollout(id);
      if (r.state !== 'running' && r.state !== 'paused' && r.state !== state) throw new Error(`rollout ended ${r.state}: ${r.reason}`);
      return r.state === state && (state === 'done' || r.rollbackVersion !== null) ? r : undefined;
    },
    { message: `rollout ${state}`, timeoutMs: 30_000, intervalMs: 100 },
  );
}

describe('staged rollouts', () => {
  it('a staged write reaches no node, and a good version rolls through every step', async () => {
    const before = await current();
    const version = await stage([{ id: 'good', address: good.address, weight: 2 }]);
    expect(version).toBe(before + 1);
    // In the history, marked staged; not current; no node runs it.
    expect((await api('GET', `${cp.url}/v1/versions/${version}`)).body).toMatchObject({ staged: true });
    expect(await current()).toBe(before);
    const started = await start(version, {
      steps: [{ nodes: 1, bakeSeconds: 2 }, { percent: 67, bakeSeconds: 1 }, { percent: 100 }],
      abortOn: { errorRatePoints: 5, minRequests: 5 },
    });
    expect(started).toMatchObject({ state: 'running', step: 1, version, baseline: before });
    // Step 1: one node runs the version, the two others keep the baseline.
    const first = await waitFor(async () => {
      const v = await versions();
      return v.filter((x) => x === version).length === 1 ? v : undefined;
    });
    expect(first.filter((x) => x === before)).toHaveLength(2);
    const done = await settled(started.id, 'done');
    expect(done.canaries).toHaveLength(3);
    expect(done.step).toBe(3);
    expect(await current()).toBe(version);
    await waitFor(async () => (await versions()).every((v) => v === version), { message: 'every node on the version' });
    // A rollout of a version that is now current, or was never staged, is refused.
    expect((await api('POST', `${cp.url}/v1/versions/${version}/rollout`, { steps: [{ percent: 100 }] })).body.code).toBe('LB_CP_NOT_STAGED');
  });

  it('a bad version is rolled back on every node by itself, with no failed request outside the step', async () => {
    const baseline = await current();
    const version = await stage([{ id: 'bad', address: badAddress }]);
    let stopLoad!: () => void;
    const stopped = new Promise<void>((resolve) => {
      stopLoad = resolve;
    });
    const traffic = dps.map((dp) => load(`${dp.url}/`, 2, stopped, { max: 20_000 }));
    const started = await start(version, {
      steps: [{ nodes: 1, bakeSeconds: 60 }, { percent: 100 }],
      abortOn: { errorRatePoints: 5, minRequests: 5 },
    });
    const aborted = await settled(started.id, 'aborted');
    expect(aborted.reason).toMatch(/error rate 100\.00 % on the rollout's nodes against 0\.00 %/);
    expect(aborted.canaries).toHaveLength(1);
    const rollbackVersion = aborted.rollbackVersion!;
    expect(rollbackVersion).toBeGreaterThan(version);
    await waitFor(async () => (await versions()).every((v) => v === rollbackVersion), { message: 'every node on the rollback version' });
    stopLoad();
    const statuses = await Promise.all(traffic);
    const canary = Number(aborted.canaries[0]!.slice('dp-'.length)) - 1;
    statuses.forEach((seen, i) => {
      expect(seen.length).toBeGreaterThan(0);
      if (i === canary) expect(seen.filter((s) => s === 500).length).toBeGreaterThan(0);
      else expect(seen.filter((s) => s !== 200)).toEqual([]);
    });
    // The rollback is a version whose content is the baseline's, and says why.
    const record = (await api('GET', `${cp.url}/v1/versions/${rollbackVersion}`)).body;
    expect(record).toMatchObject({ rollbackOf: baseline });
    expect(record.message).toContain('aborted: error rate');
    expect(record.config).toEqual((await api('GET', `${cp.url}/v1/versions/${baseline}`)).body.config);
  });

  it('a version a node refuses stops at the first step', async () => {
    // A listener on the good backend's port: no node can bind it.
    const res = await api('PUT', `${cp.url}/v1/listeners/taken?stage=true`, { port: Number(good.address.split(':')[1]), protocol: 'http' });
    expect(res.status).toBe(200);
    const version = res.body.version as number;
    const started = await start(version, { steps: [{ nodes: 1, bakeSeconds: 1 }, { percent: 100 }] });
    const aborted = await settled(started.id, 'aborted');
    expect(aborted.reason).toMatch(/refused version \d+: .*DP_ERR_LISTENER_BIND/);
    expect(aborted.step).toBe(1);
    expect(aborted.canaries).toHaveLength(1);
    await waitFor(async () => (await versions()).every((v) => v === aborted.rollbackVersion), { message: 'every node on the rollback version' });
    const nodes = (await api('GET', `${cp.url}/v1/nodes`)).body.nodes as Array<{ id: string; lastNack: { version: number } | null }>;
    expect(nodes.filter((n) => n.lastNack?.version === version).map((n) => n.id)).toEqual(aborted.canaries);
  });

  it('a step whose node does not run the version within abortOn.ackTimeoutSeconds is rolled back', async () => {
    // The node refuses it again, but NACKs do not abort this rollout: only the deadline can.
    const res = await api('PUT', `${cp.url}/v1/listeners/taken?stage=true`, { port: Number(good.address.split(':')[1]), protocol: 'http' });
    expect(res.status).toBe(200);
    const started = await start(res.body.version as number, {
      steps: [{ nodes: 1, bakeSeconds: 1 }, { percent: 100 }],
      abortOn: { nack: false, ackTimeoutSeconds: 2 },
    });
    const aborted = await settled(started.id, 'aborted');
    expect(aborted.reason).toBe(`0 of the step's 1 nodes ran version ${started.version} within 2 s (abortOn.ackTimeoutSeconds)`);
    expect(aborted.step).toBe(1);
    await waitFor(async () => (await versions()).every((v) => v === aborted.rollbackVersion), { message: 'every node on the rollback version' });
  });

  it('pause holds a rollout, resume carries on, abort takes every node back', async () => {
    const version = await stage([{ id: 'good', address: good.address, weight: 3 }]);
    // Its bake outlasts the pause below only if paused: long enough to pause within it.
    const started = await start(version, { steps: [{ nodes: 1, bakeSeconds: 3 }, { percent: 100 }] });
    await waitFor(async () => (await versions()).includes(version), { message: 'the first node on the version' });
    const paused = await api('POST', `${cp.url}/v1/rollouts/${started.id}/pause`);
    expect(paused.body).toMatchObject({ state: 'paused' });
    expect((await api('POST', `${cp.url}/v1/rollouts/${started.id}/pause`)).body.code).toBe('LB_CP_ROLLOUT_STATE');
    // Another rollout waits for this one.
    const other = await stage([{ id: 'good', address: good.address, weight: 4 }]);
    expect((await api('POST', `${cp.url}/v1/versions/${other}/rollout`, { steps: [{ percent: 100 }] })).body).toMatchObject({
      code: 'LB_CP_ROLLOUT_ACTIVE',
      rollout: started.id,
    });
    // Paused well past its bake: still one node.
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    expect((await rollout(started.id)).step).toBe(1);
    expect((await api('POST', `${cp.url}/v1/rollouts/${started.id}/resume`)).body).toMatchObject({ state: 'running' });
    const aborted = await api('POST', `${cp.url}/v1/rollouts/${started.id}/abort`);
    expect(aborted.status).toBe(200);
    const done = await settled(started.id, 'aborted');
    expect(done.reason).toBe('aborted by bootstrap-admin');
    await waitFor(async () => (await versions()).every((v) => v === done.rollbackVersion), { message: 'every node back' });
  });

  it('a control-plane restart in the middle of a rollout resumes it', async () => {
    const version = await stage([{ id: 'good', address: good.address, weight: 5 }]);
    const started = await start(version, {
      steps: [
        { nodes: 1, bakeSeconds: 3 },
        { percent: 100, bakeSeconds: 1 },
      ],
    });
    const first = await waitFor(async () => {
      const r = await rollout(started.id);
      return r.canaries.length === 1 && (await versions()).includes(version) ? r : undefined;
    });
    await cp.stop();
    await cp.restart();
    const done = await settled(started.id, 'done');
    // The same rollout carried on: the node chosen before the restart was kept.
    expect(done.canaries[0]).toBe(first.canaries[0]);
    await waitFor(async () => (await versions()).every((v) => v === version), { message: 'every node on the version' });
    expect(await current()).toBe(version);
  });

  it('with two replicas, one drives and both push: a node held by the other replica goes first, and a bad version is caught there', async () => {
    cpB = await ControlPlane.start({ etcd: etcd.url, extraArgs: ['--replica-id', 'cp-b'] });
    // Ids sort first: the rollout's first node is the one the second replica holds.
    const onB = await DataPlane.start({ controlPlanes: [cpB.grpcAddress], nodeId: 'dp-0', extraArgs: ['--traffic-report-ms', '300'] });
    dps.push(onB);
    // The driver learns of another replica's nodes from their records in etcd, written in batches:
    // start once both replicas list dp-0, or the driver would not know it yet and pick another.
    for (const replica of [cp, cpB]) {
      await waitFor(
        async () =>
          ((await api('GET', `${replica.url}/v1/nodes`)).body.nodes as Array<{ id: string; status: string }>).some(
            (n) => n.id === 'dp-0' && n.status === 'connected',
          ),
        { message: 'every replica to list dp-0' },
      );
    }
    const good1 = await stage([{ id: 'good', address: good.address, weight: 6 }]);
    // A bake long enough to look at the first step on a loaded machine (it starts once dp-0 ACKed).
    const started = await start(good1, { steps: [{ nodes: 1, bakeSeconds: 10 }, { percent: 100 }] });
    await waitFor(async () => (await onB.appliedVersion()) === good1, { message: 'dp-0, on the other replica, runs the version' });
    expect((await versions()).filter((v) => v === good1)).toHaveLength(1);
    expect((await settled(started.id, 'done')).canaries[0]).toBe('dp-0');
    await waitFor(async () => (await versions()).every((v) => v === good1), { message: 'every node on the version' });

    // A bad version on dp-0: its errors reach the driver whichever replica it is.
    const bad1 = await stage([{ id: 'bad', address: badAddress }]);
    let stopLoad!: () => void;
    const stopped = new Promise<void>((resolve) => {
      stopLoad = resolve;
    });
    const traffic = dps.map((dp) => load(`${dp.url}/`, 1, stopped, { max: 20_000 }));
    const bad = await start(bad1, { steps: [{ nodes: 1, bakeSeconds: 60 }, { percent: 100 }], abortOn: { errorRatePoints: 5, minRequests: 5 } });
    const aborted = await settled(bad.id, 'aborted');
    expect(aborted.canaries).toEqual(['dp-0']);
    expect(aborted.reason).toMatch(/error rate/);
    await waitFor(async () => (await versions()).every((v) => v === aborted.rollbackVersion), { message: 'every node back' });
    stopLoad();
    const statuses = await Promise.all(traffic);
    // dp-1 … dp-3 were outside the step.
    for (const seen of statuses.slice(0, 3)) expect(seen.filter((s) => s !== 200)).toEqual([]);
  });
});
