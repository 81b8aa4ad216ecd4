// Health across a control-plane restart while etcd is away: a node keeps what it knows of its
// backends' health until a control plane has read health again. A control plane that had just
// started used to answer a node's Hello with the health it knew — nothing, as a full update — so
// the node forgot that a backend was down and sent it traffic until etcd was back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdServer } from '../support/etcd.js';
import { HealthBackend } from '../support/health-backend.js';
import { api } from '../support/http.js';
import { ControlPlane, DataPlane } from '../support/planes.js';
import { waitFor } from '../support/wait.js';

let etcd: EtcdServer;
let cp: ControlPlane;
let dp: DataPlane;
let up: HealthBackend;
let down: HealthBackend;

const CHECK = { intervalMs: 300, timeoutMs: 200, healthyThreshold: 2, unhealthyThreshold: 3 };

beforeAll(async () => {
  etcd = await EtcdServer.start();
  // Metrics open to everyone: with etcd away no token can be checked, and the test reads them then.
  cp = await ControlPlane.start({ etcd: etcd.url, waitReady: false, extraArgs: ['--public-metrics'] });
  await waitFor(async () => (await api('GET', `${cp.url}/readyz`)).status === 200, { message: 'the control plane ready' });
  [up, down] = await Promise.all([HealthBackend.start('up'), HealthBackend.start('down')]);
  const res = await api('PUT', `${cp.url}/v1/config`, {
    pools: {
      web: {
        algorithm: 'round_robin',
        backends: [
          { id: 'up', address: up.address },
          { id: 'down', address: down.address },
        ],
        healthCheck: CHECK,
      },
    },
    routes: { web: { pools: [{ pool: 'web' }] } },
  });
  expect(res.status).toBe(200);
  dp = await DataPlane.start({ controlPlanes: [cp.grpcAddress], nodeId: 'dp-h' });
});

afterAll(async () => {
  await dp?.stop();
  await cp?.stop();
  await Promise.allSettled([up?.close(), down?.close()]);
  await etcd?.stop();
});

async function status(backend: string): Promise<string> {
  const view = (await (await fetch(`${dp.adminUrl}/config`)).json()) as { health: { backends: Record<string, Record<string, { status: string }>> } };
  return view.health.backends.web?.[backend]?.status ?? 'unknown';
}

async function connectedNodes(): Promise<number> {
  const text = await (await fetch(`${cp.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('lb_cp_connected_nodes '));
  return line === undefined ? 0 : Number(line.slice('lb_cp_connected_nodes '.length));
}

describe('health across a control-plane restart', () => {
  it('stays with the node while the new control plane cannot read it, and flows again once etcd is back', async () => {
    down.healthStatus = 503;
    await waitFor(async () => (await status('down')) === 'unhealthy', { message: 'the node to hear that "down" is down' });
    expect(await status('up')).toBe('healthy');

    await cp.kill();
    await etcd.kill(); // its data stays on disk for the restart below
    await cp.restart();
    await waitFor(async () => (await connectedNodes()) === 1, { timeoutMs: 15_000, message: 'the node to open a stream to the new control plane' });
    // The node is connected to a control plane that knows no health: for a while, what it knew
    // stays, and no request goes to the backend that is down.
    const hitsBefore = down.hits;
    const until = Date.now() + 1_500;
    while (Date.now() < until) {
      expect(await status('down')).toBe('unhealthy');
      expect(await status('up')).toBe('healthy');
      const res = await fetch(`${dp.url}/`);
      await res.text();
      expect(res.status).toBe(200);
    }
    expect(down.hits).toBe(hitsBefore);

    await etcd.restart();
    await waitFor(async () => (await api('GET', `${cp.url}/readyz`)).status === 200, { timeoutMs: 20_000, message: 'the control plane ready again' });
    expect(await status('down')).toBe('unhealthy');
    down.healthStatus = 200;
    // The node may be between attempts: a stream that heard nothing for 5 s is dropped, and the
    // next one waits up to the 10 s backoff cap.
    await waitFor(async () => (await status('down')) === 'healthy', { timeoutMs: 25_000, message: 'health to flow again' });
  });
});
