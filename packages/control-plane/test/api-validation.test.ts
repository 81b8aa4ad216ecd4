import { beforeEach, describe, expect, it } from 'vitest';
import { json, pool, testApp, type TestApp } from './helpers.js';

let t: TestApp;
beforeEach(async () => {
  t = await testApp();
});

interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  errors?: Array<{ field: string; message: string }>;
  [k: string]: unknown;
}

async function expectProblem(response: Awaited<ReturnType<TestApp['app']['inject']>>, status: number, code: string): Promise<Problem> {
  expect(response.statusCode).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = json<Problem>(response);
  expect(body).toMatchObject({ status, code, type: `urn:lb:problem:${code}` });
  expect(typeof body.title).toBe('string');
  expect(typeof body.detail).toBe('string');
  return body;
}

async function version(): Promise<number> {
  return json<{ version: number }>(await t.app.inject({ method: 'GET', url: '/v1/config' })).version;
}

describe('bad input answers 400 problem+json and changes nothing', () => {
  it('rejects a body that is not JSON', async () => {
    const res = await t.app.inject({ method: 'PUT', url: '/v1/pools/web', headers: { 'content-type': 'application/json' }, payload: '{"backends": [' });
    const problem = await expectProblem(res, 400, 'LB_CP_BODY_NOT_JSON');
    expect(problem.errors).toEqual([{ field: '(body)', message: 'is not valid JSON' }]);
    expect(await version()).toBe(0);
  });

  it('answers 415 for a body that is not declared JSON, accepts +json types, and rejects an empty body', async () => {
    for (const type of ['application/x-www-form-urlencoded', 'text/plain']) {
      const res = await t.app.inject({ method: 'PUT', url: '/v1/pools/web', headers: { 'content-type': type }, payload: JSON.stringify(pool()) });
      const problem = await expectProblem(res, 415, 'LB_CP_UNSUPPORTED_MEDIA_TYPE');
      expect(problem.errors).toEqual([{ field: 'Content-Type', message: 'must be application/json (or another +json type)' }]);
    }
    expect(await version()).toBe(0);
    const merge = await t.app.inject({
      method: 'PATCH',
      url: '/v1/pools/web',
      headers: { 'content-type': 'application/merge-patch+json' },
      payload: JSON.stringify({ algorithm: 'random' }),
    });
    await expectProblem(merge, 404, 'LB_CP_NOT_FOUND');
    const ok = await t.app.inject({
      method: 'PUT',
      url: '/v1/pools/web',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      payload: JSON.stringify(pool()),
    });
    expect(ok.statusCode).toBe(200);
    const empty = await t.app.inject({ method: 'PUT', url: '/v1/pools/api', headers: { 'content-type': 'application/json' }, payload: '' });
    const problem = await expectProblem(empty, 400, 'LB_CP_VALIDATION');
    expect(problem.errors).toEqual([{ field: '(body)', message: 'must be a JSON object' }]);
  });

  it('names every bad field: unknown field, algorithm, weight, address without port', async () => {
    const res = await t.app.inject({
      method: 'PUT',
      url: '/v1/pools/web',
      payload: { algorithm: 'fastest', extra: 1, backends: [{ id: 'b1', address: '10.0.0.1', weight: 5000 }] },
    });
    const problem = await expectProblem(res, 400, 'LB_CP_VALIDATION');
    const fields = problem.errors!.map((e) => e.field).sort();
    expect(fields).toEqual(['algorithm', 'backends[0].weight', 'extra']);
    // Address problems are found by the second (semantic) pass, once the structure is right.
    const address = await t.app.inject({ method: 'PUT', url: '/v1/pools/web', payload: { backends: [{ id: 'b1', address: '10.0.0.1' }] } });
    const p2 = await expectProblem(address, 400, 'LB_CP_VALIDATION');
    expect(p2.errors).toEqual([{ field: 'backends[0].address', message: 'must be host:port (the port is missing)' }]);
    expect(await version()).toBe(0);
  });

  it('rejects bad names in the path', async () => {
    const res = await t.app.inject({ method: 'PUT', url: '/v1/pools/Bad_Name', payload: pool() });
    const problem = await expectProblem(res, 400, 'LB_CP_VALIDATION');
    expect(problem.errors).toEqual([{ field: 'path.pool', message: 'is not a valid name: use [a-z0-9][a-z0-9-]{0,62}' }]);
    const backend = await t.app.inject({ method: 'PUT', url: '/v1/pools/web/backends/-x', payload: { address: '10.0.0.1:80' } });
    expect((await expectProblem(backend, 400, 'LB_CP_VALIDATION')).errors?.[0]?.field).toBe('path.id');
    const versionParam = await t.app.inject({ method: 'GET', url: '/v1/versions/abc' });
    expect((await expectProblem(versionParam, 400, 'LB_CP_VALIDATION')).errors?.[0]?.field).toBe('path.n');
  });

  it('rejects a route naming a missing pool, with the field relative to the body', async () => {
    const res = await t.app.inject({ method: 'PUT', url: '/v1/routes/api', payload: { match: { pathPrefix: '/api' }, pools: [{ pool: 'nope', weight: 1 }] } });
    const problem = await expectProblem(res, 400, 'LB_CP_VALIDATION');
    expect(problem.errors).toEqual([{ field: 'pools[0].pool', message: 'pool "nope" does not exist' }]);
  });

  it('rejects a whole config with cross-reference errors', async () => {
    const res = await t.app.inject({ method: 'PUT', url: '/v1/config', payload: { pools: {}, routes: { r: { pools: [{ pool: 'web' }] } } } });
    const problem = await expectProblem(res, 400, 'LB_CP_VALIDATION');
    expect(problem.errors).toEqual([{ field: 'routes.r.pools[0].pool', message: 'pool "web" does not exist' }]);
  });

  it('refuses to delete a pool that routes use, naming them (409)', async () => {
    await t.app.inject({ method: 'PUT', url: '/v1/pools/web', payload: pool() });
    await t.app.inject({ method: 'PUT', url: '/v1/routes/site', payload: { pools: [{ pool: 'web' }] } });
    const res = await t.app.inject({ method: 'DELETE', url: '/v1/pools/web' });
    const problem = await expectProblem(res, 409, 'LB_CP_POOL_IN_USE');
    expect(problem.routes).toEqual(['site']);
    expect(problem.errors).toEqual([{ field: 'routes.site.pools[0].pool', message: 'route "site" sends traffic to pool "web"' }]);
    expect(await version()).toBe(2);
  });

  it('rejects a PATCH that tries to rename a backend or sets nothing', async () => {
    await t.app.inject({ method: 'PUT', url: '/v1/pools/web', payload: pool() });
    const rename = await t.app.inject({ method: 'PATCH', url: '/v1/pools/web/backends/b1', payload: { id: 'b2' } });
    expect((await expectProblem(rename, 400, 'LB_CP_VALIDATION')).errors).toEqual([{ field: 'id', message: 'does not match the id in the path ("b1")' }]);
    const empty = await t.app.inject({ method: 'PATCH', url: '/v1/pools/web/backends/b1', payload: {} });
    await expectProblem(empty, 400, 'LB_CP_VALIDATION');
  });

  it('rejects a duplicate backend address once merged into the pool', async () => {
    await t.app.inject({ method: 'PUT', url: '/v1/pools/web', payload: pool() });
    const res = await t.app.inject({ method: 'PUT', url: '/v1/pools/web/backends/b2', payload: { address: '10.0.0.1:80' } });
    const problem = await expectProblem(res, 400, 'LB_CP_VALIDATION');
    expect(problem.errors).toEqual([{ field: 'pools.web.backends[1].address', message: 'address already used by backend "b1" in this pool' }]);
  });

  it('answers 404 problem+json for missing resources and unknown endpoints', async () => {
    await expectProblem(await t.app.inject({ method: 'GET', url: '/v1/pools/none' }), 404, 'LB_CP_NOT_FOUND');
    await expectProblem(await t.app.inject({ method: 'GET', url: '/v1/routes/none' }), 404, 'LB_CP_NOT_FOUND');
    await expectProblem(await t.app.inject({ method: 'DELETE', url: '/v1/routes/none' }), 404, 'LB_CP_NOT_FOUND');
    await expectProblem(await t.app.inject({ method: 'PATCH', url: '/v1/pools/none/backends/b1', payload: { weight: 2 } }), 404, 'LB_CP_NOT_FOUND');
    await expectProblem(await t.app.inject({ method: 'PUT', url: '/v1/pools/none/backends/b1', payload: { address: '1.2.3.4:5' } }), 404, 'LB_CP_NOT_FOUND');
    await expectProblem(await t.app.inject({ method: 'GET', url: '/v1/versions/7' }), 404, 'LB_CP_NOT_FOUND');
    await expectProblem(await t.app.inject({ method: 'GET', url: '/v1/nope' }), 404, 'LB_CP_NOT_FOUND');
    expect(await version()).toBe(0);
  });

  it('answers 503 quickly when the store is unavailable, and readyz says so', async () => {
    t.store.unavailable = true;
    const write = await t.app.inject({ method: 'PUT', url: '/v1/pools/web', payload: pool() });
    await expectProblem(write, 503, 'LB_CP_STORE_UNAVAILABLE');
    expect(write.headers['retry-after']).toBe('1');
    await expectProblem(await t.app.inject({ method: 'GET', url: '/readyz' }), 503, 'LB_CP_STORE_UNAVAILABLE');
    expect((await t.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    t.store.unavailable = false;
    expect((await t.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
  });

  it('rejects a malformed If-Match', async () => {
    const res = await t.app.inject({ method: 'PUT', url: '/v1/pools/web', headers: { 'if-match': 'abc' }, payload: pool() });
    await expectProblem(res, 400, 'LB_CP_BAD_IF_MATCH');
  });
});
