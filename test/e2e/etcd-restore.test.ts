/**
 * An etcd restored from a backup taken at an older version (issue 16), with a real control plane
 * and data plane. The one rule: within a history versions only go up; a control plane that finds
 * the store below a version it or a node has seen starts a new history at the store's version, and
 * the data plane applies a snapshot of another history whatever its number. Both ways a control
 * plane can find out are proven: its own watch, and a restarted control plane hearing it from a node.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backend } from '../support/backends.js';
import { EtcdServer } from '../support/etcd.js';
import { api, distribution } from '../support/http.js';
import { ControlPlane, DataPlane } from '../support/planes.js';
import { waitFor } from '../support/wait.js';

let etcd: EtcdServer;
let cp: ControlPlane;
let dp: DataPlane;
const backends: Backend[] = [];

async function running(): Promise<{ version: number; historyId: string }> {
  return (await fetch(`${dp.adminUrl}/config`)).json() as never;
}

async function setWeight(weight: number): Promise<number> {
  const res = await api('PATCH', `${cp.url}/v1/pools/web/backends/b2`, { weight });
  expect(res.status).toBe(200);
  return res.body.version as number;
}

beforeAll(async () => {
  etcd = await EtcdServer.start();
  cp = await ControlPlane.start({ etcd: etcd.url });
  for (const name of ['b1', 'b2']) backends.push(await Backend.start(name));
  const written = await api('PUT', `${cp.url}/v1/config`, {
    pools: { web: { algorithm: 'weighted_round_robin', backends: backends.map((b) => ({ id: b.name, address: b.address })) } },
    routes: { all: { pools: [{ pool: 'web' }] } },
  });
  expect(written.status).toBe(200);
  dp = await DataPlane.start({ controlPlanes: [cp.grpcAddress], nodeId: 'dp-restore' });
});

afterAll(async () => {
  await dp?.stop();
  await cp?.stop().catch(() => undefined);
  await Promise.all(backends.map((b) => b.close()));
  await etcd?.stop();
});

describe('an etcd restored from an older backup', () => {
  it('is followed as a new history, whether the control plane saw the versions it lost or a node tells it', async () => {
    const v2 = await setWeight(2);
    await waitFor(async () => (await running()).version === v2, { message: 'version 2 on the node' });
    const first = (await running()).historyId;
    expect(first).not.toBe('');
    const backup = await etcd.backup();
    await setWeight(3);
    const v4 = await setWeight(4);
    await waitFor(async () => (await running()).version === v4, { message: 'version 4 on the node' });

    // 1. The control plane watched versions 3 and 4 go by; etcd comes back at version 2.
    await etcd.restoreBackup(backup);
    const second = await waitFor(
      async () => {
        const now = await running();
        return now.historyId !== first ? now : undefined;
      },
      { timeoutMs: 30_000, message: 'the node to run the restored version in a new history' },
    );
    expect(second.version).toBe(v2);
    expect((await api('GET', `${cp.url}/v1/config`)).body.version).toBe(v2);
    expect(await distribution(`${dp.url}/`, 6)).toEqual({ b1: 2, b2: 4 });
    // Version numbers go on from the restored one, in the new history, and the node follows.
    const v3 = await setWeight(5);
    expect(v3).toBe(v2 + 1);
    await waitFor(async () => (await running()).version === v3, { message: 'the next version of the new history on the node' });
    expect((await running()).historyId).toBe(second.historyId);

    // 2. A control plane that starts on the restored etcd never saw the lost versions: the node's Hello says it.
    const backupAt3 = await etcd.backup();
    const v4b = await setWeight(6);
    await waitFor(async () => (await running()).version === v4b, { message: 'version 4 of the second history on the node' });
    await cp.stop();
    await etcd.restoreBackup(backupAt3);
    await cp.restart();
    const third = await waitFor(
      async () => {
        const now = await running();
        return now.historyId !== second.historyId ? now : undefined;
      },
      { timeoutMs: 30_000, message: 'the node to run the restored version in a third history' },
    );
    expect(third.version).toBe(v3);
    expect(await distribution(`${dp.url}/`, 6)).toEqual({ b1: 1, b2: 5 });
  });
});
