// What the audit trail records through the API (in memory): writes with their actor, address,
// request id, version and message; failed writes with their code; refused attempts, folded per
// window; nothing for reads and dry runs.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AuditEntry } from '../src/audit/audit-log.js';
import { json, pool, testApp } from './helpers.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('the audit trail', () => {
  it('records writes (committed and failed), not reads or dry runs, and lists them newest first with filters', async () => {
    const t = await testApp();
    await t.app.inject({ method: 'PUT', url: '/v1/pools/web', payload: pool(), headers: { 'x-request-id': 'r-1', 'x-change-message': 'add web' } });
    await t.app.inject({ method: 'PUT', url: '/v1/pools/web?dryRun=true', payload: pool([]) });
    await t.app.inject({ method: 'GET', url: '/v1/config' });
    await t.app.inject({ method: 'PUT', url: '/v1/pools/bad', payload: { algorithm: 'fastest' }, headers: { 'x-request-id': 'r-2' } });
    await t.app.close();
    const written = t.audit.entries.filter((e) => e.kind === 'write');
    expect(written).toEqual([
      expect.objectContaining({
        kind: 'write',
        actor: 'bootstrap-admin',
        role: 'admin',
        source: '127.0.0.1',
        requestId: 'r-1',
        method: 'PUT',
        path: '/v1/pools/web',
        status: 200,
        version: 1,
        committed: true,
        message: 'add web',
      }),
      expect.objectContaining({ requestId: 'r-2', status: 400, code: 'LB_CP_VALIDATION', message: 'PUT /v1/pools/bad' }),
    ]);
  });

  it('records refused attempts with the token that tried, folding repeats from one address into one entry per window', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const t = await testApp();
    const viewer = json<{ secret: string }>(await t.app.inject({ method: 'POST', url: '/v1/tokens', payload: { name: 'dash', role: 'viewer' } })).secret;
    for (let i = 0; i < 3; i++) {
      await t.app.inject({ method: 'PUT', url: '/v1/pools/web', payload: pool(), headers: { authorization: `Bearer ${viewer}` } });
    }
    await t.app.inject({ method: 'GET', url: '/v1/config', headers: { authorization: '' } });
    const refused = () => t.audit.entries.filter((e) => e.kind === 'refused');
    expect(refused()).toEqual([
      expect.objectContaining({ actor: 'dash', role: 'viewer', status: 403, code: 'LB_CP_FORBIDDEN', method: 'PUT', path: '/v1/pools/web', count: 1 }),
      expect.objectContaining({ actor: null, status: 401, code: 'LB_CP_UNAUTHENTICATED', method: 'GET', path: '/v1/config', count: 1 }),
    ]);
    // The window closes: the two folded attempts become one entry.
    await vi.advanceTimersByTimeAsync(10_000);
    expect(refused()).toHaveLength(3);
    expect(refused().find((e) => e.count === 2)).toMatchObject({ actor: 'dash', status: 403, message: expect.stringMatching(/^2 more refused attempt/) });

    const listed = json<{ entries: AuditEntry[] }>(await t.app.inject({ method: 'GET', url: '/v1/audit?actor=dash&kind=refused' }));
    expect(listed.entries.map((e) => e.count)).toEqual([2, 1]);
    const none = json<{ entries: AuditEntry[] }>(await t.app.inject({ method: 'GET', url: '/v1/audit?until=2000-01-01T00:00:00Z' }));
    expect(none.entries).toEqual([]);
    expect((await t.app.inject({ method: 'GET', url: '/v1/audit?since=yesterday' })).statusCode).toBe(400);
  });
});
