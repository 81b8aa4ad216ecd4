// The audit trail against real processes (issue 14): a write records its actor (the token's name,
// never a header), source address, request id, time and message in its version and in GET
// /v1/audit; a refused attempt is listed too; filters by actor and time work; each write is one
// structured log line.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdServer } from '../support/etcd.js';
import { api, apiAs } from '../support/http.js';
import { ControlPlane } from '../support/planes.js';
import { waitFor } from '../support/wait.js';

interface AuditEntry {
  id: string;
  at: string;
  kind: 'write' | 'refused';
  actor: string | null;
  role?: string;
  source: string;
  requestId: string;
  method: string;
  path: string;
  status: number;
  code?: string;
  version?: number;
  committed?: boolean;
  message?: string;
  count?: number;
}

let etcd: EtcdServer;
let cp: ControlPlane;
let operator: string;
let viewer: string;

beforeAll(async () => {
  etcd = await EtcdServer.start();
  // Info level: the audit lines are what this file reads from the log.
  cp = await ControlPlane.start({ etcd: etcd.url, env: { LB_LOG_LEVEL: 'info' } });
  operator = (await api('POST', `${cp.url}/v1/tokens`, { name: 'alice', role: 'operator' })).body.secret;
  viewer = (await api('POST', `${cp.url}/v1/tokens`, { name: 'dashboard', role: 'viewer' })).body.secret;
});

afterAll(async () => {
  await cp?.stop().catch(() => undefined);
  await etcd?.stop();
});

async function audit(query = ''): Promise<AuditEntry[]> {
  const res = await api('GET', `${cp.url}/v1/audit${query}`);
  if (res.status !== 200) throw new Error(`GET /v1/audit → ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.entries as AuditEntry[];
}

function auditLines(): Array<{ msg: string; audit: AuditEntry }> {
  return cp.process
    .logs()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { msg: string; audit: AuditEntry })
    .filter((line) => line.msg === 'audit');
}

describe('the audit trail', () => {
  it('records a write in its version and in GET /v1/audit: actor, source, request id, time, message', async () => {
    const before = new Date().toISOString();
    const write = await apiAs(
      operator,
      'PUT',
      `${cp.url}/v1/pools/web`,
      { backends: [{ id: 'b1', address: '10.0.0.1:80' }] },
      {
        'x-request-id': 'e2e-write-1',
        'x-change-message': 'add the web pool',
      },
    );
    expect(write.status).toBe(200);
    expect(write.headers['x-request-id']).toBe('e2e-write-1');
    const version = write.body.version as number;

    const record = await api('GET', `${cp.url}/v1/versions/${version}`);
    expect(record.body).toMatchObject({ actor: 'alice', author: 'alice', source: '127.0.0.1', requestId: 'e2e-write-1', message: 'add the web pool' });
    expect(record.body.createdAt >= before).toBe(true);

    const entry = await waitFor(async () => (await audit('?actor=alice')).find((e) => e.requestId === 'e2e-write-1'), {
      message: 'the audit entry of the write',
    });
    expect(entry).toMatchObject({
      kind: 'write',
      actor: 'alice',
      role: 'operator',
      source: '127.0.0.1',
      method: 'PUT',
      path: '/v1/pools/web',
      status: 200,
      version,
      committed: true,
      message: 'add the web pool',
    });
    expect(entry.at >= before).toBe(true);

    // One structured log line for the write, with the same facts.
    const line = await waitFor(() => auditLines().find((l) => l.audit.requestId === 'e2e-write-1'), { message: 'the audit log line' });
    expect(line.audit).toMatchObject({ kind: 'write', actor: 'alice', version, message: 'add the web pool' });
    expect(auditLines().filter((l) => l.audit.requestId === 'e2e-write-1')).toHaveLength(1);
  });

  it('the author is the token, never a header: X-Change-Author is refused and nothing changes', async () => {
    const before = (await api('GET', `${cp.url}/v1/config`)).body.version;
    const res = await apiAs(operator, 'PUT', `${cp.url}/v1/pools/web2`, { backends: [] }, { 'x-change-author': 'mallory' });
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([{ field: 'X-Change-Author', message: expect.stringMatching(/token name as actor/) }]);
    expect((await api('GET', `${cp.url}/v1/config`)).body.version).toBe(before);
  });

  it('records refused attempts: a role too low (with its actor) and a missing token', async () => {
    const denied = await apiAs(viewer, 'DELETE', `${cp.url}/v1/pools/web`, undefined, { 'x-request-id': 'e2e-denied-1' });
    expect(denied.status).toBe(403);
    const anonymous = await apiAs(null, 'PUT', `${cp.url}/v1/config`, { pools: {}, routes: {} }, { 'x-request-id': 'e2e-anon-1' });
    expect(anonymous.status).toBe(401);

    const refused = await waitFor(
      async () => {
        const entries = await audit('?kind=refused');
        return entries.some((e) => e.requestId === 'e2e-denied-1') && entries.some((e) => e.requestId === 'e2e-anon-1') ? entries : undefined;
      },
      { message: 'both refused attempts in the audit trail' },
    );
    expect(refused.find((e) => e.requestId === 'e2e-denied-1')).toMatchObject({
      kind: 'refused',
      actor: 'dashboard',
      role: 'viewer',
      source: '127.0.0.1',
      method: 'DELETE',
      path: '/v1/pools/web',
      status: 403,
      code: 'LB_CP_FORBIDDEN',
    });
    expect(refused.find((e) => e.requestId === 'e2e-anon-1')).toMatchObject({
      kind: 'refused',
      actor: null,
      status: 401,
      code: 'LB_CP_UNAUTHENTICATED',
      method: 'PUT',
    });
    // The pool is still there.
    expect((await api('GET', `${cp.url}/v1/pools/web`)).status).toBe(200);
  });

  it('filters by actor and time, pages newest first, and is for admins only', async () => {
    for (let i = 0; i < 3; i++) {
      expect((await apiAs(operator, 'PATCH', `${cp.url}/v1/pools/web/backends/b1`, { weight: i + 2 }, { 'x-request-id': `e2e-page-${i}` })).status).toBe(200);
    }
    const mine = await waitFor(async () => {
      const entries = await audit('?actor=alice&kind=write');
      return entries.filter((e) => e.requestId.startsWith('e2e-page-')).length === 3 ? entries : undefined;
    });
    expect(mine.every((e) => e.actor === 'alice')).toBe(true);
    expect(mine.slice(0, 3).map((e) => e.requestId)).toEqual(['e2e-page-2', 'e2e-page-1', 'e2e-page-0']);

    const middle = mine[1]!;
    const window = await audit(`?since=${encodeURIComponent(middle.at)}&until=${encodeURIComponent(middle.at)}&actor=alice`);
    expect(window.map((e) => e.requestId)).toEqual([middle.requestId]);
    const firstPage = await api('GET', `${cp.url}/v1/audit?actor=alice&limit=2`);
    expect(firstPage.body.entries.map((e: AuditEntry) => e.requestId)).toEqual(['e2e-page-2', 'e2e-page-1']);
    const next = await api('GET', `${cp.url}/v1/audit?actor=alice&limit=2&before=${encodeURIComponent(firstPage.body.next)}`);
    expect(next.body.entries[0].requestId).toBe('e2e-page-0');
    expect((await apiAs(operator, 'GET', `${cp.url}/v1/audit`)).status).toBe(403);
    expect((await api('GET', `${cp.url}/v1/audit?since=last-week`)).status).toBe(400);
  });
});
