/**
 * etcd restarting under 100 connected nodes (issue 16): real etcd and control plane, 100 simulated
 * data planes in two processes. No stream is lost, the control plane stays ready, pushes resume
 * as soon as etcd is back, and every replica's node list is whole again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdServer } from '../support/etcd.js';
import { api } from '../support/http.js';
import { NodeFleet } from '../support/node-fleet.js';
import { ControlPlane } from '../support/planes.js';
import { waitFor } from '../support/wait.js';

let etcd: EtcdServer;
let cp: ControlPlane;
let fleet: NodeFleet;

const config = (weight: number) => ({
  pools: { web: { backends: [{ id: 'b1', address: '10.0.0.1:80', weight }] } },
  routes: { all: { pools: [{ pool: 'web' }] } },
});

beforeAll(async () => {
  etcd = await EtcdServer.start();
  cp = await ControlPlane.start({ etcd: etcd.url });
});

afterAll(async () => {
  await fleet?.stop();
  await cp?.stop();
  await etcd?.stop();
});

describe('an etcd restart under 100 connected nodes', () => {
  it('loses no stream, keeps the control plane ready, and pushes again once etcd is back', async () => {
    const first = await api('PUT', `${cp.url}/v1/config`, config(1));
    expect(first.status).toBe(200);
    fleet = NodeFleet.start({ controlPlanes: [cp.grpcAddress], nodes: 100, processes: 2 });
    await fleet.converged(first.body.version);

    const readiness: number[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        readiness.push((await fetch(`${cp.url}/readyz`)).status);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      await etcd.kill();
      // Down for a while: the writes in that time fail fast, the streams do not notice.
      expect((await api('PUT', `${cp.url}/v1/config`, config(2))).status).toBe(503);
      await etcd.restart();
      const next = await waitFor(
        async () => {
          const res = await api('PUT', `${cp.url}/v1/config`, config(3));
          return res.status === 200 ? res : undefined;
        },
        { timeoutMs: 20_000, message: 'a write to succeed once etcd is back' },
      );
      await fleet.converged(next.body.version);
      const nodes = await waitFor(
        async () => {
          const list = (await api('GET', `${cp.url}/v1/nodes`)).body.nodes as Array<{ status: string; configVersion: number }>;
          return list.length === 100 && list.every((n) => n.status === 'connected' && n.configVersion === next.body.version) ? list : undefined;
        },
        { timeoutMs: 10_000, message: 'GET /v1/nodes to list all 100 at the new version' },
      );
      expect(nodes).toHaveLength(100);
    } finally {
      watching = false;
      await watcher;
    }
    expect(fleet.closedStreams()).toBe(0);
    expect(readiness.length).toBeGreaterThan(10);
    expect(readiness.every((status) => status === 200)).toBe(true);
  });
});
