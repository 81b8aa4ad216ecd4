// Tokens through the API (in memory): the secret is answered once, lists never show it, revocation
// is immediate, and each role reaches exactly what it should. The same table runs against real
// processes in test/e2e/auth.test.ts.
import { beforeEach, describe, expect, it } from 'vitest';
import { json, pool, testApp, type TestApp } from './helpers.js';

let t: TestApp;
beforeEach(async () => {
  t = await testApp();
});

async function create(name: string, role: string, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await t.app.inject({ method: 'POST', url: '/v1/tokens', payload: { name, role, ...extra } });
  expect(res.statusCode).toBe(201);
  return json<{ secret: string }>(res).secret;
}

const as = (secret: string | null, method: string, url: string, payload?: object) =>
  t.app.inject({ method: method as 'GET', url, headers: { authorization: secret === null ? '' : `Bearer ${secret}` }, ...(payload ? { payload } : {}) });

describe('/v1/tokens', () => {
  it('answers the secret once, lists tokens without secrets or hashes, and refuses duplicates and bad input', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/v1/tokens', payload: { name: 'ci', role: 'operator', expiresAt: '2099-01-01T00:00:00Z' } });
    expect(res.statusCode).toBe(201);
    expect(res.headers['cache-control']).toBe('no-store');
    const created = json<Record<string, unknown>>(res);
    expect(created).toMatchObject({ name: 'ci', role: 'operator', createdBy: 'bootstrap-admin', expiresAt: '2099-01-01T00:00:00.000Z' });
    expect(created.secret).toMatch(/^lb_ci_[0-9a-f]{64}$/);
    const list = json<{ tokens: Array<Record<string, unknown>> }>(await t.app.inject({ method: 'GET', url: '/v1/tokens' }));
    expect(list.tokens).toEqual([
      { name: 'ci', role: 'operator', createdAt: expect.any(String), createdBy: 'bootstrap-admin', expiresAt: '2099-01-01T00:00:00.000Z' },
    ]);
    expect(JSON.stringify(list)).not.toContain(String(created.secret).slice(6));
    expect(t.auth.tokens.get('ci')?.hash).toMatch(/^scrypt\$/);

    const again = await t.app.inject({ method: 'POST', url: '/v1/tokens', payload: { name: 'ci', role: 'viewer' } });
    expect(again.statusCode).toBe(409);
    expect(json(again).code).toBe('LB_CP_TOKEN_EXISTS');
    const bad = await t.app.inject({ method: 'POST', url: '/v1/tokens', payload: { name: 'Bad_Name', role: 'root', expiresAt: '2001-01-01T00:00:00Z', x: 1 } });
    expect(bad.statusCode).toBe(400);
    expect(
      json<{ errors: Array<{ field: string }> }>(bad)
        .errors.map((e) => e.field)
        .sort(),
    ).toEqual(['expiresAt', 'name', 'role', 'x']);
    const reserved = await t.app.inject({ method: 'POST', url: '/v1/tokens', payload: { name: 'bootstrap-admin', role: 'admin' } });
    expect(json(reserved).errors).toEqual([{ field: 'name', message: '"bootstrap-admin" is reserved for the --admin-token-file secret' }]);
  });

  it('revokes at once: the next request with the token is refused', async () => {
    const secret = await create('temp', 'viewer');
    expect((await as(secret, 'GET', '/v1/config')).statusCode).toBe(200);
    expect(json(await t.app.inject({ method: 'DELETE', url: '/v1/tokens/temp' }))).toEqual({ name: 'temp', revoked: true });
    expect((await as(secret, 'GET', '/v1/config')).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'DELETE', url: '/v1/tokens/temp' })).statusCode).toBe(404);
  });
});

describe('roles', () => {
  it('viewer reads, operator also changes config, admin also manages tokens and reads the audit', async () => {
    await t.app.inject({ method: 'PUT', url: '/v1/pools/web', payload: pool() });
    const tokens = { viewer: await create('v', 'viewer'), operator: await create('o', 'operator'), admin: await create('a', 'admin') };
    const cases: Array<[string, string, object | undefined, 'viewer' | 'operator' | 'admin']> = [
      ['GET', '/v1/config', undefined, 'viewer'],
      ['GET', '/v1/nodes', undefined, 'viewer'],
      ['GET', '/metrics', undefined, 'viewer'],
      ['PUT', '/v1/pools/api?dryRun=true', pool(), 'operator'],
      ['PATCH', '/v1/pools/web/backends/b1?dryRun=true', { state: 'draining' }, 'operator'],
      ['GET', '/v1/tokens', undefined, 'admin'],
      ['GET', '/v1/audit', undefined, 'admin'],
    ];
    for (const [method, url, body, needed] of cases) {
      expect((await as(null, method, url, body)).statusCode, `${method} ${url} without a token`).toBe(401);
      for (const [role, secret] of Object.entries(tokens)) {
        const allowed = ['viewer', 'operator', 'admin'].indexOf(role) >= ['viewer', 'operator', 'admin'].indexOf(needed);
        const res = await as(secret, method, url, body);
        expect(res.statusCode, `${method} ${url} as ${role}`).toBe(allowed ? 200 : 403);
        if (!allowed) expect(json(res)).toMatchObject({ code: 'LB_CP_FORBIDDEN', role, requiredRole: needed });
      }
    }
  });

  it('leaves /healthz, /readyz and the docs open, and /metrics open only when asked', async () => {
    for (const url of ['/healthz', '/readyz', '/openapi.json']) expect((await as(null, 'GET', url)).statusCode, url).toBe(200);
    const closed = await as(null, 'GET', '/metrics');
    expect(closed.statusCode).toBe(401);
    expect(closed.headers['www-authenticate']).toBe('Bearer realm="lb"');
    const open = await testApp({ publicMetrics: true });
    expect((await open.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: '' } })).statusCode).toBe(200);
  });

  it('wants a token for paths that do not exist, so probing for endpoints needs one', async () => {
    expect((await as(null, 'GET', '/v1/secret-things')).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'GET', url: '/v1/secret-things' })).statusCode).toBe(404);
  });
});
