import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryConfigStore } from '../src/store/memory-config-store.js';
import { ConfigWriter } from '../src/versioning/config-writer.js';
import { json, pool, testApp, type TestApp } from './helpers.js';

let t: TestApp;
beforeEach(async () => {
  t = await testApp();
});

interface WriteAnswer {
  version: number;
  committed: boolean;
  dryRun?: boolean;
  changes: Array<{ op: string; path: string; before?: unknown; after?: unknown }>;
  [k: string]: unknown;
}

async function put(url: string, payload: unknown, headers: Record<string, string> = {}) {
  return t.app.inject({ method: 'PUT', url, payload: payload as object, headers });
}

describe('versions and ETags', () => {
  it('numbers every write, answers the version in body and ETag, and GETs send the current ETag', async () => {
    const first = await put('/v1/pools/web', pool());
    expect(first.statusCode).toBe(200);
    expect(first.headers.etag).toBe('"1"');
    expect(json<WriteAnswer>(first)).toMatchObject({ version: 1, committed: true, name: 'web' });
    const second = await put('/v1/routes/site', { match: { host: 'example.com' }, pools: [{ pool: 'web' }] });
    expect(second.headers.etag).toBe('"2"');
    for (const url of ['/v1/config', '/v1/pools', '/v1/pools/web', '/v1/routes', '/v1/routes/site']) {
      const res = await t.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(200);
      expect(res.headers.etag, url).toBe('"2"');
      expect(json(res).version, url).toBe(2);
    }
    const config = json<{ config: { pools: Record<string, unknown>; routes: Record<string, unknown> } }>(
      await t.app.inject({ method: 'GET', url: '/v1/config' }),
    );
    expect(config.config.routes.site).toEqual({ match: { host: 'example.com' }, pools: [{ pool: 'web', weight: 1 }] });
    expect(config.config.pools.web).toEqual({ algorithm: 'round_robin', backends: [{ id: 'b1', address: '10.0.0.1:80', weight: 1, state: 'active' }] });
  });

  it('honours If-Match quoted, unquoted, weak and *, and answers 412 when stale', async () => {
    await put('/v1/pools/web', pool());
    expect((await put('/v1/pools/a', pool(), { 'if-match': '"1"' })).statusCode).toBe(200);
    expect((await put('/v1/pools/b', pool(), { 'if-match': '2' })).statusCode).toBe(200);
    expect((await put('/v1/pools/c', pool(), { 'if-match': 'W/"3"' })).statusCode).toBe(200);
    expect((await put('/v1/pools/d', pool(), { 'if-match': '*' })).statusCode).toBe(200);
    const stale = await put('/v1/pools/e', pool(), { 'if-match': '"1"' });
    expect(stale.statusCode).toBe(412);
    expect(stale.headers['content-type']).toMatch(/problem\+json/);
    expect(json(stale)).toMatchObject({ code: 'LB_CP_STALE_VERSION', currentVersion: 5 });
    expect(json(await t.app.inject({ method: 'GET', url: '/v1/config' })).version).toBe(5);
    // If-Match "0" means "only if nothing was ever written".
    const fresh = await testApp();
    expect((await fresh.app.inject({ method: 'PUT', url: '/v1/pools/web', payload: pool(), headers: { 'if-match': '"0"' } })).statusCode).toBe(200);
  });

  it('with If-Match, a write that loses the race to another writer answers 412 and commits nothing', async () => {
    await put('/v1/pools/web', pool());
    t.store.beforeCommit = () => {
      t.store.beforeCommit = undefined;
      t.store.forceCommit({ createdAt: new Date().toISOString(), author: 'other', message: 'other replica', config: { pools: {}, routes: {} } });
    };
    const res = await put('/v1/pools/api', pool(), { 'if-match': '"1"' });
    expect(res.statusCode).toBe(412);
    expect(json(res).currentVersion).toBe(2);
    const history = json<{ versions: Array<{ message: string }> }>(await t.app.inject({ method: 'GET', url: '/v1/versions' }));
    expect(history.versions.map((v) => v.message)).toEqual(['other replica', 'PUT /v1/pools/web']);
  });

  it('without If-Match, a write that loses the race is redone on top of the winner', async () => {
    await put('/v1/pools/web', pool());
    t.store.beforeCommit = () => {
      t.store.beforeCommit = undefined;
      t.store.forceCommit({
        createdAt: new Date().toISOString(),
        author: 'other',
        message: 'other',
        config: { pools: { other: { algorithm: 'round_robin', backends: [] } }, routes: {} },
      });
    };
    const res = await put('/v1/pools/api', pool());
    expect(res.statusCode).toBe(200);
    expect(json(res).version).toBe(3);
    const pools = json<{ pools: Record<string, unknown> }>(await t.app.inject({ method: 'GET', url: '/v1/pools' })).pools;
    expect(Object.keys(pools).sort()).toEqual(['api', 'other']);
  });

  it('gives up with 409 when the config keeps changing under a write', async () => {
    t.store.beforeCommit = () => {
      t.store.forceCommit({ createdAt: new Date().toISOString(), author: 'x', message: 'x', config: { pools: {}, routes: {} } });
    };
    const res = await put('/v1/pools/web', pool());
    expect(res.statusCode).toBe(409);
    expect(json(res).code).toBe('LB_CP_CONFLICT');
  });

  it('dryRun validates and diffs without committing', async () => {
    await put('/v1/pools/web', pool());
    const res = await put('/v1/pools/web/backends/b1?dryRun=true', { address: '10.0.0.1:80', weight: 5 });
    expect(res.statusCode).toBe(200);
    expect(res.headers.etag).toBe('"1"');
    expect(json<WriteAnswer>(res)).toMatchObject({
      dryRun: true,
      committed: false,
      version: 1,
      changes: [{ op: 'change', path: 'pools.web.backends.b1.weight', before: 1, after: 5 }],
    });
    expect(json(await t.app.inject({ method: 'GET', url: '/v1/config' })).version).toBe(1);
    const bad = await put('/v1/pools/web?dryRun=true', { algorithm: 'nope' });
    expect(bad.statusCode).toBe(400);
    const del = await t.app.inject({ method: 'DELETE', url: '/v1/pools/web?dryRun=true' });
    expect(json<WriteAnswer>(del).changes).toEqual([expect.objectContaining({ op: 'remove', path: 'pools.web' })]);
    expect(json(await t.app.inject({ method: 'GET', url: '/v1/pools/web' })).name).toBe('web');
  });

  it('a write that changes nothing commits no version', async () => {
    await put('/v1/pools/web', pool());
    const again = await put('/v1/pools/web', pool());
    expect(again.statusCode).toBe(200);
    expect(json<WriteAnswer>(again)).toMatchObject({ version: 1, committed: false, changes: [] });
    expect(again.headers.etag).toBe('"1"');
    const history = json<{ versions: unknown[] }>(await t.app.inject({ method: 'GET', url: '/v1/versions' }));
    expect(history.versions).toHaveLength(1);
  });

  it('records the token as actor, the address, the request id and X-Change-Message (with a default)', async () => {
    await put('/v1/pools/web', pool(), { 'x-change-message': 'add web', 'x-request-id': 'req-42' });
    await put('/v1/pools/api', pool());
    const history = json<{ versions: Array<Record<string, unknown>> }>(await t.app.inject({ method: 'GET', url: '/v1/versions' }));
    expect(history.versions[0]).toMatchObject({ version: 2, parent: 1, actor: 'bootstrap-admin', author: 'bootstrap-admin', message: 'PUT /v1/pools/api' });
    expect(history.versions[1]).toMatchObject({
      version: 1,
      parent: 0,
      actor: 'bootstrap-admin',
      source: '127.0.0.1',
      requestId: 'req-42',
      message: 'add web',
    });
    expect(Object.keys(history.versions[0]!).sort()).toEqual(['actor', 'author', 'createdAt', 'message', 'parent', 'requestId', 'source', 'version']);
    expect(Number.isNaN(Date.parse(String(history.versions[0]!.createdAt)))).toBe(false);
  });

  it('refuses X-Change-Author: the author is the token, not a header', async () => {
    const res = await put('/v1/pools/web', pool(), { 'x-change-author': 'alice' });
    expect(res.statusCode).toBe(400);
    expect(json(res)).toMatchObject({ code: 'LB_CP_VALIDATION', errors: [{ field: 'X-Change-Author' }] });
    expect(json(await t.app.inject({ method: 'GET', url: '/v1/config' })).version).toBe(0);
  });

  it('manages one backend with PUT, PATCH and DELETE, keeping its place in the pool', async () => {
    await put(
      '/v1/pools/web',
      pool([
        { id: 'b1', address: '10.0.0.1:80' },
        { id: 'b2', address: '10.0.0.2:80' },
      ]),
    );
    const added = await put('/v1/pools/web/backends/b3', { address: '10.0.0.3:80', weight: 3 });
    expect(json(added)).toMatchObject({ version: 2, pool: 'web', backend: { id: 'b3', address: '10.0.0.3:80', weight: 3, state: 'active' } });
    const patched = await t.app.inject({ method: 'PATCH', url: '/v1/pools/web/backends/b1', payload: { state: 'draining' } });
    expect(json(patched)).toMatchObject({ version: 3, backend: { id: 'b1', state: 'draining', weight: 1 } });
    const deleted = await t.app.inject({ method: 'DELETE', url: '/v1/pools/web/backends/b2' });
    expect(json(deleted)).toMatchObject({ version: 4, committed: true });
    const web = json<{ pool: { backends: Array<{ id: string }> } }>(await t.app.inject({ method: 'GET', url: '/v1/pools/web' }));
    expect(web.pool.backends.map((b) => b.id)).toEqual(['b1', 'b3']);
    await expect(t.app.inject({ method: 'DELETE', url: '/v1/pools/web/backends/b2' }).then((r) => r.statusCode)).resolves.toBe(404);
  });

  it('deletes routes and then their pool', async () => {
    await put('/v1/pools/web', pool());
    await put('/v1/routes/site', { pools: [{ pool: 'web' }] });
    expect((await t.app.inject({ method: 'DELETE', url: '/v1/routes/site' })).statusCode).toBe(200);
    const res = await t.app.inject({ method: 'DELETE', url: '/v1/pools/web' });
    expect(json(res)).toMatchObject({ version: 4, committed: true, name: 'web' });
    expect(json(await t.app.inject({ method: 'GET', url: '/v1/config' })).config).toEqual({ pools: {}, routes: {} });
  });
});

describe('history: pagination, read, diff, rollback', () => {
  async function makeVersions(n: number): Promise<void> {
    for (let i = 1; i <= n; i++) await put(`/v1/pools/p${i}`, pool());
  }

  it('lists newest first with limit and a before cursor', async () => {
    await makeVersions(7);
    const page1 = json<{ versions: Array<{ version: number }>; next?: number }>(await t.app.inject({ method: 'GET', url: '/v1/versions?limit=3' }));
    expect(page1.versions.map((v) => v.version)).toEqual([7, 6, 5]);
    expect(page1.next).toBe(5);
    const page2 = json<{ versions: Array<{ version: number }>; next?: number }>(
      await t.app.inject({ method: 'GET', url: `/v1/versions?limit=3&before=${page1.next}` }),
    );
    expect(page2.versions.map((v) => v.version)).toEqual([4, 3, 2]);
    const page3 = json<{ versions: Array<{ version: number }>; next?: number }>(
      await t.app.inject({ method: 'GET', url: `/v1/versions?limit=3&before=${page2.next}` }),
    );
    expect(page3.versions.map((v) => v.version)).toEqual([1]);
    expect(page3.next).toBeUndefined();
    const all = json<{ versions: unknown[]; next?: number }>(await t.app.inject({ method: 'GET', url: '/v1/versions' }));
    expect(all.versions).toHaveLength(7);
    expect(all.next).toBeUndefined();
    for (const bad of ['limit=0', 'limit=501', 'before=0', 'limit=x']) {
      const res = await t.app.inject({ method: 'GET', url: `/v1/versions?${bad}` });
      expect(res.statusCode, bad).toBe(400);
      expect(json(res).code, bad).toBe('LB_CP_VALIDATION');
    }
  });

  it('reads one version with its config', async () => {
    await makeVersions(2);
    const v1 = json<Record<string, unknown>>(await t.app.inject({ method: 'GET', url: '/v1/versions/1' }));
    expect(v1).toMatchObject({ version: 1, parent: 0, actor: 'bootstrap-admin', message: 'PUT /v1/pools/p1', config: { pools: { p1: pool() }, routes: {} } });
  });

  it('diffs a version against its parent by default, or against any version', async () => {
    await makeVersions(3);
    const byParent = json(await t.app.inject({ method: 'GET', url: '/v1/versions/3/diff' }));
    expect(byParent).toEqual({
      from: 2,
      to: 3,
      changes: [
        { op: 'add', path: 'pools.p3', after: { algorithm: 'round_robin', backends: [{ id: 'b1', address: '10.0.0.1:80', weight: 1, state: 'active' }] } },
      ],
    });
    const against1 = json<{ from: number; to: number; changes: Array<{ path: string }> }>(
      await t.app.inject({ method: 'GET', url: '/v1/versions/3/diff?against=1' }),
    );
    expect(against1.from).toBe(1);
    expect(against1.changes.map((c) => c.path).sort()).toEqual(['pools.p2', 'pools.p3']);
    const backwards = json<{ changes: Array<{ op: string }> }>(await t.app.inject({ method: 'GET', url: '/v1/versions/1/diff?against=3' }));
    expect(backwards.changes.map((c) => c.op)).toEqual(['remove', 'remove']);
    const fromEmpty = json<{ changes: unknown[] }>(await t.app.inject({ method: 'GET', url: '/v1/versions/3/diff?against=0' }));
    expect(fromEmpty.changes).toHaveLength(3);
    expect((await t.app.inject({ method: 'GET', url: '/v1/versions/3/diff?against=9' })).statusCode).toBe(404);
  });

  it('rolls back by adding a new version with the old content', async () => {
    await makeVersions(3);
    const res = await t.app.inject({ method: 'POST', url: '/v1/versions/1/rollback' });
    expect(res.statusCode).toBe(200);
    expect(res.headers.etag).toBe('"4"');
    expect(json(res)).toMatchObject({ version: 4, committed: true, rollbackOf: 1 });
    const v4 = json<Record<string, unknown>>(await t.app.inject({ method: 'GET', url: '/v1/versions/4' }));
    const v1 = json<Record<string, unknown>>(await t.app.inject({ method: 'GET', url: '/v1/versions/1' }));
    expect(v4.config).toEqual(v1.config);
    expect(v4).toMatchObject({ parent: 3, message: 'rollback to 1', actor: 'bootstrap-admin', rollbackOf: 1 });
    // History is never rewritten: versions 2 and 3 are still there.
    expect(json(await t.app.inject({ method: 'GET', url: '/v1/versions/3' })).version).toBe(3);
    const custom = await t.app.inject({ method: 'POST', url: '/v1/versions/3/rollback', headers: { 'x-change-message': 'undo the undo', 'if-match': '"4"' } });
    expect(json(custom)).toMatchObject({ version: 5 });
    expect(json(await t.app.inject({ method: 'GET', url: '/v1/versions/5' })).message).toBe('undo the undo');
    const stale = await t.app.inject({ method: 'POST', url: '/v1/versions/1/rollback', headers: { 'if-match': '"4"' } });
    expect(stale.statusCode).toBe(412);
    const dry = await t.app.inject({ method: 'POST', url: '/v1/versions/1/rollback?dryRun=true' });
    expect(json(dry)).toMatchObject({ dryRun: true, version: 5, committed: false });
    expect(json<{ changes: unknown[] }>(dry).changes).toHaveLength(2);
    expect((await t.app.inject({ method: 'POST', url: '/v1/versions/99/rollback' })).statusCode).toBe(404);
  });

  it('replaces the whole config declaratively with PUT /v1/config', async () => {
    await makeVersions(2);
    const doc = { pools: { web: pool() }, routes: { site: { match: { pathPrefix: '/' }, pools: [{ pool: 'web', weight: 1 }] } } };
    const res = await put('/v1/config', doc);
    expect(json(res)).toMatchObject({ version: 3, committed: true });
    expect(json<{ config: unknown }>(res).config).toEqual({
      pools: { web: { algorithm: 'round_robin', backends: [{ id: 'b1', address: '10.0.0.1:80', weight: 1, state: 'active' }] } },
      routes: doc.routes,
    });
    const paths = json<{ changes: Array<{ op: string; path: string }> }>(res)
      .changes.map((c) => `${c.op} ${c.path}`)
      .sort();
    expect(paths).toEqual(['add pools.web', 'add routes.site', 'remove pools.p1', 'remove pools.p2']);
  });
});

describe('observability', () => {
  it('counts requests by route template and lists nodes from the node store', async () => {
    await put('/v1/pools/web', pool());
    await t.app.inject({ method: 'GET', url: '/v1/pools/web' });
    await t.nodes.connect({
      id: 'dp-1',
      address: '10.1.0.1:80',
      zone: 'a',
      connectedAt: new Date(0).toISOString(),
      configVersion: 1,
      healthRevision: 0,
      lastNack: null,
      replica: 'r1',
    });
    const nodes = json<{ nodes: unknown[] }>(await t.app.inject({ method: 'GET', url: '/v1/nodes' }));
    expect(nodes.nodes).toEqual([expect.objectContaining({ id: 'dp-1', configVersion: 1, lastNack: null, replica: 'r1' })]);
    const metrics = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.headers['content-type']).toMatch(/^text\/plain/);
    expect(metrics.body).toContain('lb_cp_http_requests_total{method="PUT",route="/v1/pools/:pool",status="200"} 1');
    expect(metrics.body).toContain('lb_cp_http_requests_total{method="GET",route="/v1/pools/:pool",status="200"} 1');
  });
});

describe('the config size limit', () => {
  it('answers 413 with the size and the limit for a write whose result is too large, and commits nothing', async () => {
    const store = new MemoryConfigStore();
    const limited = await testApp({ store, writer: new ConfigWriter(store, { maxConfigBytes: 4096 }) });
    const small = await limited.app.inject({ method: 'PUT', url: '/v1/pools/web', payload: pool() });
    expect(small.statusCode).toBe(200);
    const backends = Array.from({ length: 100 }, (_, i) => ({ id: `b${i}`, address: `10.0.1.${i + 1}:80` }));
    const large = await limited.app.inject({ method: 'PUT', url: '/v1/pools/web/backends', payload: backends });
    expect(large.statusCode).toBe(413);
    expect(large.headers['content-type']).toMatch(/problem\+json/);
    const problem = json<{ code: string; bytes: number; limit: number; detail: string }>(large);
    expect(problem).toMatchObject({ code: 'LB_CP_PAYLOAD_TOO_LARGE', limit: 4096 });
    expect(problem.bytes).toBeGreaterThan(4096);
    expect(problem.detail).toMatch(/nothing was changed/);
    expect(json(await limited.app.inject({ method: 'GET', url: '/v1/config' })).version).toBe(1);
  });
});
