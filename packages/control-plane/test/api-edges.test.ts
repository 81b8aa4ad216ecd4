// The rough edges operators hit, each closed: unknown query parameters, wrong methods, PUT taking
// what GET answers, a pool's backend list and one backend, PATCH of a pool, pruned versions.
import { beforeEach, describe, expect, it } from 'vitest';
import { json, pool, testApp, type TestApp } from './helpers.js';

let t: TestApp;
beforeEach(async () => {
  t = await testApp();
});

const send = (method: string, url: string, payload?: unknown, headers: Record<string, string> = {}) =>
  t.app.inject({ method: method as 'GET', url, ...(payload !== undefined ? { payload: payload as object } : {}), headers });

async function version(): Promise<number> {
  return json<{ version: number }>(await send('GET', '/v1/config')).version;
}

describe('query parameters', () => {
  it('refuses an unknown one on writes and reads, naming the ones the endpoint takes, and commits nothing', async () => {
    for (const url of ['/v1/pools/web?dryrun=true', '/v1/pools/web?dry_run=true']) {
      const res = await send('PUT', url, pool());
      expect(res.statusCode, url).toBe(400);
      expect(json(res).errors).toEqual([{ field: `query.${url.split('?')[1]!.split('=')[0]}`, message: 'unknown query parameter: it takes dryRun, stage' }]);
    }
    expect(await version()).toBe(0);
    const read = await send('GET', '/v1/config?pretty=1');
    expect(read.statusCode).toBe(400);
    expect(json(read).errors).toEqual([{ field: 'query.pretty', message: 'unknown query parameter: this endpoint takes no query parameters' }]);
    expect((await send('GET', '/v1/versions?limit=2&before=5')).statusCode).toBe(200);
  });
});

describe('methods', () => {
  it('answers 405 with Allow for a wrong method on a path that exists, 404 otherwise', async () => {
    const res = await send('POST', '/v1/config');
    expect(res.statusCode).toBe(405);
    expect(res.headers.allow).toBe('GET, HEAD, PUT');
    expect(json(res)).toMatchObject({ code: 'LB_CP_METHOD_NOT_ALLOWED', allow: ['GET', 'HEAD', 'PUT'] });
    expect((await send('PATCH', '/v1/routes/site')).headers.allow).toBe('DELETE, GET, HEAD, PUT');
    expect((await send('POST', '/v1/pools/web/backends')).headers.allow).toBe('GET, HEAD, PUT');
    expect((await send('GET', '/v1/nope')).statusCode).toBe(404);
  });
});

describe('PUT takes what GET answers', () => {
  it('PUT /v1/config accepts the GET /v1/config document, whose version acts as If-Match', async () => {
    await send('PUT', '/v1/pools/web', pool());
    const read = json<{ version: number; config: { pools: Record<string, { algorithm: string }> } }>(await send('GET', '/v1/config'));
    read.config.pools.web!.algorithm = 'random';
    const ok = await send('PUT', '/v1/config', read);
    expect(ok.statusCode).toBe(200);
    expect(json(ok)).toMatchObject({ version: 2, committed: true, changes: [{ op: 'change', path: 'pools.web.algorithm' }] });
    // The same document again: it was read at version 1, which is no longer current.
    const stale = await send('PUT', '/v1/config', read);
    expect(stale.statusCode).toBe(412);
    expect(json(stale)).toMatchObject({ code: 'LB_CP_STALE_VERSION', currentVersion: 2 });
    const odd = await send('PUT', '/v1/config', { ...read, version: 2, extra: 1 });
    expect(odd.statusCode).toBe(400);
    expect(json(odd).errors).toEqual([{ field: 'extra', message: 'unknown field (a GET answer holds only version, config)' }]);
  });

  it('PUT of a pool, a route and a backend accept their GET documents; a name that differs from the path is refused', async () => {
    await send('PUT', '/v1/pools/web', pool());
    const got = json<Record<string, unknown>>(await send('GET', '/v1/pools/web'));
    expect((await send('PUT', '/v1/pools/web', got)).statusCode).toBe(200);
    const moved = await send('PUT', '/v1/pools/api', got);
    expect(moved.statusCode).toBe(400);
    expect(json(moved).errors).toEqual([{ field: 'name', message: 'is "web" but the path names "api"' }]);
    const backend = json<Record<string, unknown>>(await send('GET', '/v1/pools/web/backends/b1'));
    expect(backend).toMatchObject({ version: 1, pool: 'web', backend: { id: 'b1', address: '10.0.0.1:80', weight: 1, state: 'active' } });
    expect((await send('PUT', '/v1/pools/web/backends/b1', { ...backend, backend: { address: '10.0.0.9:80' } })).statusCode).toBe(200);
  });
});

describe("a pool's backends", () => {
  it('GET lists them and GET of one backend answers it; unknown ones are 404', async () => {
    await send(
      'PUT',
      '/v1/pools/web',
      pool([
        { id: 'b1', address: '10.0.0.1:80' },
        { id: 'b2', address: '10.0.0.2:80', weight: 3 },
      ]),
    );
    const list = await send('GET', '/v1/pools/web/backends');
    expect(list.statusCode).toBe(200);
    expect(list.headers.etag).toBe('"1"');
    expect(json(list)).toEqual({
      version: 1,
      pool: 'web',
      backends: [
        { id: 'b1', address: '10.0.0.1:80', weight: 1, state: 'active' },
        { id: 'b2', address: '10.0.0.2:80', weight: 3, state: 'active' },
      ],
    });
    expect(json(await send('GET', '/v1/pools/web/backends/b2')).backend).toMatchObject({ id: 'b2', weight: 3 });
    expect((await send('GET', '/v1/pools/web/backends/b9')).statusCode).toBe(404);
    expect((await send('GET', '/v1/pools/nope/backends')).statusCode).toBe(404);
  });

  it('PUT replaces the whole list in one version, with field errors relative to the list', async () => {
    await send('PUT', '/v1/pools/web', { ...pool(), algorithm: 'weighted_round_robin' });
    const res = await send('PUT', '/v1/pools/web/backends', [
      { id: 'n1', address: '10.0.1.1:80' },
      { id: 'n2', address: '10.0.1.2:80', weight: 2 },
    ]);
    expect(res.statusCode).toBe(200);
    expect(json(res)).toMatchObject({ version: 2, backends: [{ id: 'n1' }, { id: 'n2', weight: 2 }] });
    // The rest of the pool is untouched.
    expect(json(await send('GET', '/v1/pools/web')).pool).toMatchObject({ algorithm: 'weighted_round_robin' });
    const bad = await send('PUT', '/v1/pools/web/backends', [
      { id: 'x', address: '999.1.1.1:80' },
      { id: 'x', address: '10.0.0.1:80' },
    ]);
    expect(bad.statusCode).toBe(400);
    expect(json(bad).errors).toEqual(
      expect.arrayContaining([
        { field: '[0].address', message: expect.stringMatching(/not an IPv4 address/) },
        { field: '[1].id', message: 'duplicate backend id "x" (also at index 0)' },
      ]),
    );
    const odd = await send('PUT', '/v1/pools/web/backends', { pool: 'web', backends: [], colour: 'red' });
    expect(json(odd).errors).toEqual([{ field: 'colour', message: 'unknown field (a GET answer holds only version, pool, backends)' }]);
    expect(await version()).toBe(2);
  });
});

describe('PATCH /v1/pools/{pool}', () => {
  it('merges the fields sent, removes those sent as null, and leaves the backends alone', async () => {
    await send('PUT', '/v1/pools/web', { ...pool(), healthCheck: { intervalMs: 1000 }, slowStartMs: 5000 });
    const res = await send(
      'PATCH',
      '/v1/pools/web',
      { algorithm: 'least_connections', healthCheck: { path: '/ready' }, slowStartMs: null },
      {
        'content-type': 'application/merge-patch+json',
      },
    );
    expect(res.statusCode).toBe(200);
    const stored = json<{ pool: Record<string, unknown> }>(res).pool;
    expect(stored).toMatchObject({
      algorithm: 'least_connections',
      healthCheck: { path: '/ready', intervalMs: 1000, timeoutMs: 1000 },
      backends: [{ id: 'b1' }],
    });
    expect(stored).not.toHaveProperty('slowStartMs');
  });

  it('names the bad field of the patched pool and changes nothing; a missing pool is 404', async () => {
    await send('PUT', '/v1/pools/web', pool());
    const res = await send('PATCH', '/v1/pools/web', { healthCheck: { intervalMs: 1000, timeoutMs: 5000 }, colour: 'red' });
    expect(res.statusCode).toBe(400);
    expect(json(res).errors).toEqual(expect.arrayContaining([{ field: 'colour', message: 'unknown field' }]));
    const timeout = await send('PATCH', '/v1/pools/web', { healthCheck: { intervalMs: 1000, timeoutMs: 5000 } });
    expect(json(timeout).errors).toEqual([{ field: 'healthCheck.timeoutMs', message: 'must not exceed intervalMs (1000)' }]);
    expect((await send('PATCH', '/v1/pools/nope', { algorithm: 'random' })).statusCode).toBe(404);
    expect(await version()).toBe(1);
  });
});

describe('probe timeouts above the interval', () => {
  it('are refused in what is written, but a stored one (from before the rule) blocks no other write', async () => {
    const legacy = {
      algorithm: 'round_robin' as const,
      backends: [],
      healthCheck: {
        type: 'http' as const,
        path: '/health',
        intervalMs: 1000,
        timeoutMs: 2000,
        healthyThreshold: 2,
        unhealthyThreshold: 3,
        expectedStatuses: [200],
      },
    };
    t.store.forceCommit({ createdAt: new Date().toISOString(), author: 'old', message: 'before the rule', config: { pools: { legacy }, routes: {} } });
    expect((await send('PUT', '/v1/pools/other', pool())).statusCode).toBe(200);
    const rewrite = await send('PUT', '/v1/pools/legacy', legacy);
    expect(rewrite.statusCode).toBe(400);
    expect(json(rewrite).errors).toEqual([{ field: 'healthCheck.timeoutMs', message: 'must not exceed intervalMs (1000)' }]);
    expect((await send('PATCH', '/v1/pools/legacy', { healthCheck: { timeoutMs: 900 } })).statusCode).toBe(200);
  });
});

describe('versions pruned from history', () => {
  it('answers 410 for a version that existed, 404 for one that never did', async () => {
    await send('PUT', '/v1/pools/a', pool());
    await send('PUT', '/v1/pools/b', pool());
    await t.store.pruneVersions(2, new Set());
    const gone = await send('GET', '/v1/versions/1');
    expect(gone.statusCode).toBe(410);
    expect(json(gone).code).toBe('LB_CP_VERSION_PRUNED');
    expect((await send('POST', '/v1/versions/1/rollback')).statusCode).toBe(410);
    expect((await send('GET', '/v1/versions/3')).statusCode).toBe(404);
  });
});

describe('nodes', () => {
  it('lists a disconnected node with its last ack until an operator forgets it; a connected one cannot be forgotten', async () => {
    const record = {
      id: 'dp-1',
      address: '10.0.0.1:8000',
      zone: '',
      connectedAt: '2027-01-01T00:00:00.000Z',
      configVersion: 4,
      healthRevision: 0,
      lastNack: null,
      replica: 'memory',
    };
    await t.nodes.connect(record);
    expect(json<{ nodes: unknown[] }>(await send('GET', '/v1/nodes')).nodes).toEqual([{ ...record, status: 'connected', lastSeenAt: null }]);
    const busy = await send('DELETE', '/v1/nodes/dp-1');
    expect(busy.statusCode).toBe(409);
    expect(json(busy).code).toBe('LB_CP_NODE_CONNECTED');
    await t.nodes.disconnect('dp-1');
    const [gone] = json<{ nodes: Array<Record<string, unknown>> }>(await send('GET', '/v1/nodes')).nodes;
    expect(gone).toMatchObject({ id: 'dp-1', status: 'disconnected', configVersion: 4 });
    expect(Number.isNaN(Date.parse(String(gone?.lastSeenAt)))).toBe(false);
    expect(json(await send('DELETE', '/v1/nodes/dp-1'))).toEqual({ id: 'dp-1', forgotten: true });
    expect(json<{ nodes: unknown[] }>(await send('GET', '/v1/nodes')).nodes).toEqual([]);
    expect((await send('DELETE', '/v1/nodes/dp-1')).statusCode).toBe(404);
  });
});
