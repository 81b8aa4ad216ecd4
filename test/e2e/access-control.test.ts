// Who may change what, against real processes (issue 14): every role against every endpoint class
// (one table), tokens as resources whose secret is shown once and stored hashed, revocation at once
// on both replicas, the bootstrap admin token (from a file, or made on the first start and printed
// once), the slowing of repeated wrong tokens, and /metrics left open by a flag.
import { statSync } from 'node:fs';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, apiAs } from '../support/http.js';
import { EtcdServer } from '../support/etcd.js';
import { ControlPlane } from '../support/planes.js';
import { waitFor } from '../support/wait.js';

let etcd: EtcdServer;
let a: ControlPlane;
let b: ControlPlane;
const secrets: Record<'viewer' | 'operator' | 'admin', string> = { viewer: '', operator: '', admin: '' };

async function createToken(cp: ControlPlane, name: string, role: string): Promise<string> {
  const res = await api('POST', `${cp.url}/v1/tokens`, { name, role });
  if (res.status !== 201) throw new Error(`POST /v1/tokens → ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.secret as string;
}

beforeAll(async () => {
  etcd = await EtcdServer.start();
  a = await ControlPlane.start({ etcd: etcd.url, extraArgs: ['--replica-id', 'cp-a'] });
  b = await ControlPlane.start({ etcd: etcd.url, extraArgs: ['--replica-id', 'cp-b'] });
  const config = {
    pools: { web: { backends: [{ id: 'b1', address: '127.0.0.1:9' }] }, spare: { backends: [] } },
    routes: { site: { pools: [{ pool: 'web' }] } },
  };
  expect((await api('PUT', `${a.url}/v1/config`, config)).status).toBe(200);
  for (const role of ['viewer', 'operator', 'admin'] as const) secrets[role] = await createToken(a, `table-${role}`, role);
});

afterAll(async () => {
  await a?.stop().catch(() => undefined);
  await b?.stop().catch(() => undefined);
  await etcd?.stop();
});

type Needs = 'public' | 'viewer' | 'operator' | 'admin';
const ROLES = ['viewer', 'operator', 'admin'] as const;

/**
 * One row per endpoint: who it needs and what an allowed caller gets (writes are dry runs or name
 * things that do not exist, so the table changes nothing and rows do not depend on each other).
 */
const TABLE: Array<{ method: string; path: string; body?: unknown; needs: Needs; ok: number }> = [
  { method: 'GET', path: '/healthz', needs: 'public', ok: 200 },
  { method: 'GET', path: '/readyz', needs: 'public', ok: 200 },
  { method: 'GET', path: '/openapi.json', needs: 'public', ok: 200 },
  { method: 'GET', path: '/ui/', needs: 'public', ok: 200 },
  { method: 'GET', path: '/metrics', needs: 'viewer', ok: 200 },
  { method: 'GET', path: '/v1/config', needs: 'viewer', ok: 200 },
  { method: 'GET', path: '/v1/pools', needs: 'viewer', ok: 200 },
  { method: 'GET', path: '/v1/pools/web', needs: 'viewer', ok: 200 },
  { method: 'GET', path: '/v1/pools/web/backends', needs: 'viewer', ok: 200 },
  { method: 'GET', path: '/v1/pools/web/backends/b1', needs: 'viewer', ok: 200 },
  { method: 'GET', path: '/v1/pools/web/health', needs: 'viewer', ok: 200 },
  { method: 'GET', path: '/v1/routes', needs: 'viewer', ok: 200 },
  { method: 'GET', path: '/v1/routes/site', needs: 'viewer', ok: 200 },
  { method: 'GET', path: '/v1/versions', needs: 'viewer', ok: 200 },
  { method: 'GET', path: '/v1/versions/1', needs: 'viewer', ok: 200 },
  { method: 'GET', path: '/v1/versions/1/diff', needs: 'viewer', ok: 200 },
  { method: 'GET', path: '/v1/nodes', needs: 'viewer', ok: 200 },
  { method: 'GET', path: '/v1/stats', needs: 'viewer', ok: 200 },
  { method: 'GET', path: '/v1/rollouts', needs: 'viewer', ok: 200 },
  { method: 'GET', path: '/v1/rollouts/r-none', needs: 'viewer', ok: 404 },
  { method: 'PUT', path: '/v1/config?dryRun=true', body: { pools: {}, routes: {} }, needs: 'operator', ok: 200 },
  { method: 'PUT', path: '/v1/pools/new?dryRun=true', body: { backends: [] }, needs: 'operator', ok: 200 },
  { method: 'PATCH', path: '/v1/pools/web?dryRun=true', body: { algorithm: 'random' }, needs: 'operator', ok: 200 },
  { method: 'DELETE', path: '/v1/pools/spare?dryRun=true', needs: 'operator', ok: 200 },
  { method: 'PUT', path: '/v1/pools/web/backends?dryRun=true', body: [], needs: 'operator', ok: 200 },
  { method: 'PUT', path: '/v1/pools/web/backends/b2?dryRun=true', body: { address: '127.0.0.1:10' }, needs: 'operator', ok: 200 },
  { method: 'PATCH', path: '/v1/pools/web/backends/b1?dryRun=true', body: { state: 'draining' }, needs: 'operator', ok: 200 },
  { method: 'DELETE', path: '/v1/pools/web/backends/b1?dryRun=true', needs: 'operator', ok: 200 },
  { method: 'POST', path: '/v1/pools/web/backends/nobody/keepalive', needs: 'operator', ok: 404 },
  { method: 'POST', path: '/v1/versions/1/rollout', body: { steps: [{ percent: 100 }] }, needs: 'operator', ok: 409 },
  { method: 'POST', path: '/v1/rollouts/r-none/pause', needs: 'operator', ok: 404 },
  { method: 'POST', path: '/v1/rollouts/r-none/resume', needs: 'operator', ok: 404 },
  { method: 'POST', path: '/v1/rollouts/r-none/abort', needs: 'operator', ok: 404 },
  { method: 'PUT', path: '/v1/routes/other?dryRun=true', body: { match: { pathPrefix: '/x' }, pools: [{ pool: 'web' }] }, needs: 'operator', ok: 200 },
  { method: 'DELETE', path: '/v1/routes/site?dryRun=true', needs: 'operator', ok: 200 },
  { method: 'POST', path: '/v1/versions/1/rollback?dryRun=true', needs: 'operator', ok: 200 },
  { method: 'DELETE', path: '/v1/nodes/no-such-node', needs: 'operator', ok: 404 },
  { method: 'GET', path: '/v1/tokens', needs: 'admin', ok: 200 },
  { method: 'POST', path: '/v1/tokens', body: { name: 'table-made', role: 'viewer' }, needs: 'admin', ok: 201 },
  { method: 'DELETE', path: '/v1/tokens/no-such-token', needs: 'admin', ok: 404 },
  { method: 'GET', path: '/v1/audit', needs: 'admin', ok: 200 },
];

const rank = (role: Needs) => ['public', 'viewer', 'operator', 'admin'].indexOf(role);

describe('access control', () => {
  it('every role against every endpoint: allowed answers, 403 for too low a role, 401 without a token', async () => {
    const failures: string[] = [];
    for (const row of TABLE) {
      const url = `${a.url}${row.path}`;
      const anonymous = await apiAs(null, row.method, url, row.body);
      const expectedAnonymous = row.needs === 'public' ? row.ok : 401;
      if (anonymous.status !== expectedAnonymous) failures.push(`${row.method} ${row.path} without a token: ${anonymous.status}, want ${expectedAnonymous}`);
      if (anonymous.status === 401 && anonymous.body?.code !== 'LB_CP_UNAUTHENTICATED')
        failures.push(`${row.method} ${row.path}: 401 without its problem code`);
      for (const role of ROLES) {
        const res = await apiAs(secrets[role], row.method, url, row.body);
        const want = rank(role) >= rank(row.needs) ? row.ok : 403;
        if (res.status !== want) failures.push(`${row.method} ${row.path} as ${role}: ${res.status}, want ${want} (${JSON.stringify(res.body).slice(0, 200)})`);
        if (want === 403) {
          if (!String(res.headers['content-type']).startsWith('application/problem+json'))
            failures.push(`${row.method} ${row.path} as ${role}: 403 is not problem+json`);
          if (res.body?.code !== 'LB_CP_FORBIDDEN' || res.body?.requiredRole !== row.needs)
            failures.push(`${row.method} ${row.path} as ${role}: ${JSON.stringify(res.body)}`);
        }
        // The POST row creates a token: remove it so the next role can create it again.
        if (row.path === '/v1/tokens' && row.method === 'POST' && res.status === 201) await api('DELETE', `${a.url}/v1/tokens/table-made`);
      }
    }
    expect(failures).toEqual([]);
    // The table changed nothing: every write in it was a dry run or named nothing.
    expect((await api('GET', `${a.url}/v1/config`)).body.version).toBe(1);
  });

  it('a wrong token is 401 problem+json with WWW-Authenticate, on every class of endpoint', async () => {
    for (const path of ['/v1/config', '/v1/tokens', '/metrics']) {
      const res = await apiAs(`lb_table-viewer_${'0'.repeat(64)}`, 'GET', `${a.url}${path}`);
      expect(res.status, path).toBe(401);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="lb"');
      expect(res.body).toMatchObject({ code: 'LB_CP_UNAUTHENTICATED', detail: 'the token is not valid: unknown, revoked or mistyped' });
    }
  });
});

describe('tokens', () => {
  it('answers the secret once, lists tokens without it, and stores only a scrypt hash in etcd', async () => {
    const created = await api('POST', `${a.url}/v1/tokens`, { name: 'ci', role: 'operator', expiresAt: '2099-12-31T00:00:00Z' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'ci', role: 'operator', createdBy: 'bootstrap-admin', expiresAt: '2099-12-31T00:00:00.000Z' });
    const secret = created.body.secret as string;
    expect(secret).toMatch(/^lb_ci_[0-9a-f]{64}$/);
    for (const cp of [a, b]) {
      const listed = await api('GET', `${cp.url}/v1/tokens`);
      expect(listed.body.tokens).toContainEqual(expect.objectContaining({ name: 'ci', role: 'operator' }));
      expect(JSON.stringify(listed.body)).not.toContain(secret.slice(6));
    }
    const client = new Etcd3({ hosts: etcd.url });
    try {
      const stored = await client.get('/lb/tokens/ci').string();
      expect(stored).toMatch(/"hash":"scrypt\$16384\$8\$1\$/);
      expect(stored).not.toContain(secret.slice(6));
    } finally {
      client.close();
    }
    // Usable on either replica (B once its watch has the token), with the operator's reach.
    await waitFor(async () => (await apiAs(secret, 'PUT', `${b.url}/v1/pools/ci-pool?dryRun=true`, { backends: [] })).status === 200, {
      message: 'B to accept the new token for an operator write',
    });
    expect((await apiAs(secret, 'GET', `${b.url}/v1/tokens`)).status).toBe(403);
  });

  it('DELETE revokes at once: refused on the replica that deleted it before it answered, and on the other within its watch', async () => {
    const secret = await createToken(a, 'short-lived', 'viewer');
    await waitFor(async () => (await apiAs(secret, 'GET', `${b.url}/v1/config`)).status === 200, { message: 'B to accept the new token' });
    expect((await apiAs(secret, 'GET', `${a.url}/v1/config`)).status).toBe(200);
    const revoked = await api('DELETE', `${a.url}/v1/tokens/short-lived`);
    expect(revoked.body).toEqual({ name: 'short-lived', revoked: true });
    expect((await apiAs(secret, 'GET', `${a.url}/v1/config`)).status).toBe(401);
    const started = Date.now();
    await waitFor(async () => (await apiAs(secret, 'GET', `${b.url}/v1/config`)).status === 401, {
      timeoutMs: 3_000,
      intervalMs: 10,
      message: 'B to refuse the revoked token',
    });
    expect(Date.now() - started).toBeLessThan(3_000);
    // And it stays refused (a periodic reload never brings it back).
    expect((await apiAs(secret, 'GET', `${b.url}/v1/config`)).status).toBe(401);
  });

  it('refuses an expired token', async () => {
    // Far enough ahead that creating it (a slow hash) cannot outlast it on a busy machine.
    const expiresAt = new Date(Date.now() + 3_000).toISOString();
    const res = await api('POST', `${a.url}/v1/tokens`, { name: 'brief', role: 'viewer', expiresAt });
    expect(res.status).toBe(201);
    await waitFor(async () => (await apiAs(res.body.secret, 'GET', `${a.url}/v1/config`)).status === 401, {
      timeoutMs: 10_000,
      message: 'the token to expire',
    });
    expect((await apiAs(res.body.secret, 'GET', `${a.url}/v1/config`)).body.detail).toMatch(/token "brief" expired at/);
  });
});

describe('the bootstrap admin token', () => {
  it('without --admin-token-file, the first start on an empty etcd creates "admin" and prints it once; restarts do not', async () => {
    const cp = await ControlPlane.start({ etcd: etcd.url, prefix: '/fresh', adminTokenFile: false });
    try {
      const printed = await waitFor(() => /lb_admin_[0-9a-f]{64}/.exec(cp.process.logs())?.[0], { message: 'the printed admin token' });
      expect((await apiAs(printed, 'GET', `${cp.url}/v1/tokens`)).body.tokens).toEqual([expect.objectContaining({ name: 'admin', role: 'admin' })]);
      await cp.stop();
      await cp.restart();
      expect((await apiAs(printed, 'GET', `${cp.url}/v1/config`)).status).toBe(200);
      expect(cp.process.logs()).not.toMatch(/lb_admin_/);
      // Once deleted, it is not made again: the first start has been.
      expect((await apiAs(printed, 'DELETE', `${cp.url}/v1/tokens/admin`)).status).toBe(200);
      await cp.stop();
      await cp.restart();
      expect(cp.process.logs()).not.toMatch(/lb_admin_/);
    } finally {
      await cp.stop();
    }
  });

  it('--admin-token-file naming a missing file creates it (mode 0600) with a secret that works', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'lb-admin-e2e-')), 'token');
    const cp = await ControlPlane.start({ etcd: etcd.url, prefix: '/filed', extraArgs: ['--admin-token-file', file] });
    try {
      const secret = readFileSync(file, 'utf8').trim();
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect((await apiAs(secret, 'GET', `${cp.url}/v1/tokens`)).status).toBe(200);
      // The same file on a restart: the same secret, not a new one.
      await cp.stop();
      await cp.restart();
      expect(readFileSync(file, 'utf8').trim()).toBe(secret);
      expect((await apiAs(secret, 'POST', `${cp.url}/v1/tokens`, { name: 'x', role: 'viewer' })).status).toBe(201);
    } finally {
      await cp.stop();
    }
  });
});

describe('guessing tokens', () => {
  it('slows down repeated wrong tokens from one address, but not a valid token from it', async () => {
    // A loopback address of its own, so the other tests' failures do not count here.
    const agent = new Agent({ localAddress: '127.0.0.2' });
    const valid = secrets.viewer;
    const call = async (token: string) => {
      const started = performance.now();
      const res = await request(`${a.url}/v1/config`, { dispatcher: agent, headers: { authorization: `Bearer ${token}` } });
      await res.body.text();
      return { status: res.statusCode, ms: performance.now() - started };
    };
    try {
      expect((await call(valid)).status).toBe(200);
      const wrong: Array<{ status: number; ms: number }> = [];
      for (let i = 0; i < 8; i++) wrong.push(await call(`lb_table-viewer_${String(i).repeat(64)}`));
      expect(wrong.every((r) => r.status === 401)).toBe(true);
      // Five free failures, then 250 ms, 500 ms, 1 s before each answer.
      expect(wrong[5]!.ms).toBeGreaterThanOrEqual(240);
      expect(wrong[7]!.ms).toBeGreaterThanOrEqual(990);
      const right = await call(valid);
      expect(right.status).toBe(200);
      expect(right.ms).toBeLessThan(wrong[7]!.ms);
    } finally {
      await agent.close();
    }
  });
});

describe('/metrics for scrapers', () => {
  it('needs a token by default and none with --public-metrics', async () => {
    expect((await apiAs(null, 'GET', `${a.url}/metrics`)).status).toBe(401);
    const open = await ControlPlane.start({ etcd: etcd.url, prefix: '/metrics', extraArgs: ['--public-metrics'] });
    try {
      const res = await apiAs(null, 'GET', `${open.url}/metrics`);
      expect(res.status).toBe(200);
      expect(String(res.body)).toMatch(/lb_cp_config_version/);
      expect((await apiAs(null, 'GET', `${open.url}/v1/config`)).status).toBe(401);
    } finally {
      await open.stop();
    }
  });
});
