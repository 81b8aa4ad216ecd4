// Config versions as operators live with them: history, rollback, per-node acks and NACKs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_ADMIN_ACTOR } from '../support/auth.js';
import { api, distribution } from '../support/http.js';
import { Stack } from '../support/stack.js';
import { waitFor } from '../support/wait.js';

let stack: Stack;

beforeAll(async () => {
  stack = await Stack.start({ dataPlanes: 2, backends: 2 });
});

afterAll(async () => {
  await stack?.stop();
});

describe('versions, rollback and node status', () => {
  it('moves traffic with each version and back again on rollback', async () => {
    const [b1, b2] = stack.backends as [(typeof stack.backends)[0], (typeof stack.backends)[0]];
    const cp = stack.cp.url;
    const v1 = await stack.applyConfig(
      { pools: { web: { algorithm: 'round_robin', backends: [{ id: 'b1', address: b1.address }] } }, routes: { web: { pools: [{ pool: 'web' }] } } },
      { 'x-change-message': 'first pool' },
    );
    const dp = stack.dps[0]!;
    expect(await distribution(`${dp.url}/`, 10)).toEqual({ b1: 10 });

    // Add a backend through the backend endpoint: a new version, traffic spreads.
    const added = await api('PUT', `${cp}/v1/pools/web/backends/b2`, { address: b2.address, weight: 1 }, { 'x-change-message': 'add b2' });
    expect(added.status).toBe(200);
    expect(added.body.version).toBe(v1 + 1);
    expect(added.headers.etag).toBe(`"${v1 + 1}"`);
    await stack.converge(v1 + 1);
    expect(await distribution(`${dp.url}/`, 10)).toEqual({ b1: 5, b2: 5 });

    // Roll back to v1: a new version whose content equals v1's.
    const rolled = await api('POST', `${cp}/v1/versions/${v1}/rollback`);
    expect(rolled.status).toBe(200);
    expect(rolled.body.version).toBe(v1 + 2);
    await stack.converge(v1 + 2);
    for (const node of stack.dps) expect(await distribution(`${node.url}/`, 10)).toEqual({ b1: 10 });

    const history = await api('GET', `${cp}/v1/versions`);
    expect(history.status).toBe(200);
    expect(history.body.versions.map((v: { version: number }) => v.version).slice(0, 3)).toEqual([v1 + 2, v1 + 1, v1]);
    expect(history.body.versions[2]).toMatchObject({ version: v1, actor: TEST_ADMIN_ACTOR, message: 'first pool' });
    expect(history.body.versions[0].parent).toBe(v1 + 1);

    const restored = await api('GET', `${cp}/v1/versions/${v1 + 2}`);
    const original = await api('GET', `${cp}/v1/versions/${v1}`);
    expect(restored.body.config).toEqual(original.body.config);

    const diff = await api('GET', `${cp}/v1/versions/${v1 + 1}/diff?against=${v1}`);
    expect(diff.status).toBe(200);
    expect(diff.body.changes).toEqual([expect.objectContaining({ op: 'add', path: 'pools.web.backends.b2' })]);

    const nodes = await api('GET', `${cp}/v1/nodes`);
    expect(nodes.body.nodes.map((n: { id: string }) => n.id).sort()).toEqual(['dp-1', 'dp-2']);
    for (const node of nodes.body.nodes) expect(node.configVersion).toBe(v1 + 2);
  });

  it('refuses bad input with problem+json and changes nothing', async () => {
    const cp = stack.cp.url;
    const before = await api('GET', `${cp}/v1/config`);
    const bad = await api('PUT', `${cp}/v1/pools/web`, { algorithm: 'fastest', backends: [{ id: 'x', address: 'nohost', weight: 5000 }] });
    expect(bad.status).toBe(400);
    expect(bad.headers['content-type']).toMatch(/application\/problem\+json/);
    const fields = bad.body.errors.map((e: { field: string }) => e.field);
    expect(fields).toEqual(expect.arrayContaining(['algorithm', 'backends[0].weight']));
    const missingPool = await api('PUT', `${cp}/v1/routes/broken`, { pools: [{ pool: 'nope' }] });
    expect(missingPool.status).toBe(400);
    const after = await api('GET', `${cp}/v1/config`);
    expect(after.body).toEqual(before.body);
  });

  it('a dry run shows the diff and commits nothing', async () => {
    const cp = stack.cp.url;
    const before = await api('GET', `${cp}/v1/config`);
    const dry = await api('PATCH', `${cp}/v1/pools/web/backends/b1?dryRun=true`, { weight: 9 });
    expect(dry.status).toBe(200);
    expect(dry.body.changes).toEqual([{ op: 'change', path: 'pools.web.backends.b1.weight', before: 1, after: 9 }]);
    expect((await api('GET', `${cp}/v1/config`)).body.version).toBe(before.body.version);
  });

  it('two writes racing with the same If-Match: exactly one wins', async () => {
    const cp = stack.cp.url;
    const current = (await api('GET', `${cp}/v1/config`)).body.version as number;
    const results = await Promise.all([3, 4].map((weight) => api('PATCH', `${cp}/v1/pools/web/backends/b1`, { weight }, { 'if-match': `"${current}"` })));
    expect(results.map((r) => r.status).sort()).toEqual([200, 412]);
    const after = (await api('GET', `${cp}/v1/config`)).body;
    expect(after.version).toBe(current + 1);
  });

  it('a data plane NACKs a snapshot it cannot validate and keeps serving the last good one', async () => {
    const cp = stack.cp.url;
    const good = (await api('GET', `${cp}/v1/config`)).body.version as number;
    // Write a bad version straight into etcd, as a buggy or newer control plane might.
    const bad = good + 1;
    expect(await stack.etcd.commitUnchecked(good, { pools: { web: { algorithm: 'no-such-algorithm', backends: [] } }, routes: {} })).toBe(true);
    const nodes = await waitFor(
      async () => {
        const res = await api('GET', `${cp}/v1/nodes`);
        const list = res.body.nodes as { id: string; configVersion: number; lastNack: { version: number; error: string } | null }[];
        return list.length === 2 && list.every((n) => n.lastNack?.version === bad) ? list : undefined;
      },
      { message: 'both nodes to NACK the bad version' },
    );
    for (const node of nodes) {
      expect(node.configVersion).toBe(good);
      expect(node.lastNack!.error).toMatch(/algorithm/);
    }
    for (const dp of stack.dps) {
      expect(await dp.appliedVersion()).toBe(good);
      expect((await distribution(`${dp.url}/`, 4)).b1).toBeGreaterThan(0);
    }
  });
});
