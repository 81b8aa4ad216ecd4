// Losing and regaining the control plane: data planes keep serving, start from their cache,
// re-ack after a restart, and fail over between control-plane replicas.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, distribution, get } from '../support/http.js';
import { ControlPlane, DataPlane } from '../support/planes.js';
import { Stack } from '../support/stack.js';
import { waitFor } from '../support/wait.js';

let stack: Stack;
let version: number;

beforeAll(async () => {
  stack = await Stack.start({ dataPlanes: 2, backends: 2 });
  const [b1, b2] = stack.backends as [(typeof stack.backends)[0], (typeof stack.backends)[0]];
  version = await stack.applyConfig({
    pools: {
      web: {
        algorithm: 'round_robin',
        backends: [
          { id: 'b1', address: b1.address },
          { id: 'b2', address: b2.address },
        ],
      },
    },
    routes: { web: { pools: [{ pool: 'web' }] } },
  });
});

afterAll(async () => {
  await stack?.stop();
});

describe('control plane loss', () => {
  it('data planes keep serving when the control plane dies', async () => {
    await stack.cp.kill();
    for (const dp of stack.dps) expect(await distribution(`${dp.url}/`, 10)).toEqual({ b1: 5, b2: 5 });
  });

  it('a data plane restarted while the control plane is down serves from its cache file', async () => {
    const dp = stack.dps[0]!;
    await dp.stop();
    await dp.restart(); // waits for /readyz: only the cache can make it ready now
    const config = (await (await fetch(`${dp.adminUrl}/config`)).json()) as { version: number; source: string };
    expect(config.version).toBe(version);
    expect(config.source).toBe('cache');
    expect(await distribution(`${dp.url}/`, 10)).toEqual({ b1: 5, b2: 5 });
  });

  it('a data plane with neither control plane nor cache is not ready and serves nothing', async () => {
    const lonely = await DataPlane.start({ controlPlanes: [stack.cp.grpcAddress], nodeId: 'dp-lonely', waitReady: false });
    try {
      expect((await fetch(`${lonely.adminUrl}/readyz`)).status).toBe(503);
      expect((await get(`${lonely.url}/`)).status).toBeGreaterThanOrEqual(500);
    } finally {
      await lonely.stop();
    }
  });

  it('a restarted control plane brings config back from etcd and the nodes re-ack', async () => {
    await stack.cp.restart();
    expect((await api('GET', `${stack.cp.url}/v1/config`)).body.version).toBe(version);
    await waitFor(
      async () => {
        const nodes = (await api('GET', `${stack.cp.url}/v1/nodes`)).body.nodes as { id: string; configVersion: number }[];
        return nodes.length === 2 && nodes.every((n) => n.configVersion === version);
      },
      { timeoutMs: 20_000, message: 'both nodes to reconnect and ack' },
    );
    // And new writes flow again.
    const res = await api('PATCH', `${stack.cp.url}/v1/pools/web/backends/b2`, { state: 'disabled' });
    expect(res.status).toBe(200);
    await stack.converge(res.body.version);
    for (const dp of stack.dps) expect(await distribution(`${dp.url}/`, 6)).toEqual({ b1: 6 });
  });
});

describe('two control-plane replicas', () => {
  it('a write through one replica reaches nodes held by the other, and nodes fail over', async () => {
    const second = await ControlPlane.start({ etcd: stack.etcd.url });
    const dp = await DataPlane.start({ controlPlanes: [second.grpcAddress, stack.cp.grpcAddress], nodeId: 'dp-replicas' });
    try {
      // The replica holding the node publishes its nodes every --node-flush-ms (2 s): the other lists it by then.
      await waitFor(async () => ((await api('GET', `${stack.cp.url}/v1/nodes`)).body.nodes as { id: string }[]).some((n) => n.id === 'dp-replicas'), {
        message: 'the other replica to list the node',
      });

      // Written through the first replica, pushed by the second.
      const write = await api('PATCH', `${stack.cp.url}/v1/pools/web/backends/b2`, { state: 'active' });
      expect(write.status).toBe(200);
      await waitFor(async () => (await dp.appliedVersion()) === write.body.version, { message: 'dp-replicas to apply the write made on the other replica' });

      // The replica holding the node dies; the node moves to the other one and keeps taking updates.
      await second.kill();
      const next = await api('PATCH', `${stack.cp.url}/v1/pools/web/backends/b1`, { weight: 2 });
      expect(next.status).toBe(200);
      await waitFor(async () => (await dp.appliedVersion()) === next.body.version, { timeoutMs: 20_000, message: 'dp-replicas to fail over and apply' });
    } finally {
      await dp.stop();
      await second.stop().catch(() => undefined);
    }
  });
});
