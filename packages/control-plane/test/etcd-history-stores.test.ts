/**
 * The etcd stores behind tokens, the audit trail, known nodes and version pruning, against a real
 * etcd: revocation visible to another replica's copy, the first admin made once, audit pages by
 * time, nodes kept after they disconnect, versions pruned around the ones in use.
 */
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@lb/shared';
import { EtcdServer } from '../../../test/support/etcd.js';
import { EtcdAuditLog } from '../src/audit/etcd-audit-log.js';
import { EtcdTokenStore } from '../src/auth/etcd-token-store.js';
import type { TokenRecord } from '../src/auth/token-store.js';
import { encodeConfig } from '../src/store/encoded-config.js';
import { EtcdConfigStore } from '../src/store/etcd-config-store.js';
import { waitFor } from './helpers.js';

const logger = createLogger('test', 'silent');
let etcd: EtcdServer;
const clients: Etcd3[] = [];
const closers: Array<() => Promise<void>> = [];

function client(): Etcd3 {
  const c = new Etcd3({ hosts: etcd.url });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  etcd = await EtcdServer.start();
});

afterAll(async () => {
  for (const close of closers) await close();
  for (const c of clients) c.close();
  await etcd?.stop();
});

function tokenStore(prefix: string): EtcdTokenStore {
  const store = new EtcdTokenStore({ client: client(), prefix, logger, resyncIntervalMs: 60_000 });
  store.start();
  closers.push(() => store.close());
  return store;
}

const record = (name: string): TokenRecord => ({ name, role: 'viewer', createdAt: new Date().toISOString(), createdBy: 't', hash: `scrypt$1$1$1$a$${name}` });

describe('EtcdTokenStore', () => {
  it("shows a token created through one replica on the other, and drops a revoked one from both (the deleter's at once)", async () => {
    const a = tokenStore('/tok1');
    const b = tokenStore('/tok1');
    await Promise.all([a.ready(), b.ready()]);
    expect(await a.create(record('ci'))).toBe(true);
    expect(a.get('ci')?.name).toBe('ci');
    expect(await b.create(record('ci'))).toBe(false);
    await waitFor('B to see the token', () => b.get('ci'));
    expect(await b.delete('ci')).toBe(true);
    expect(b.get('ci')).toBeUndefined();
    await waitFor('A to drop the revoked token', () => a.get('ci') === undefined || undefined, 3_000);
    expect(await a.delete('ci')).toBe(false);
  });

  it('creates the first admin once per etcd, even after it is deleted', async () => {
    const a = tokenStore('/tok2');
    const b = tokenStore('/tok2');
    const results = await Promise.all([a.createFirstAdmin(record('admin')), b.createFirstAdmin(record('admin'))]);
    expect(results.filter(Boolean)).toHaveLength(1);
    await a.delete('admin');
    expect(await a.createFirstAdmin(record('admin'))).toBe(false);
  });
});

describe('EtcdAuditLog', () => {
  it('lists newest first, filters by actor, kind and time, pages with next, and prunes the oldest', async () => {
    const log = new EtcdAuditLog(client(), '/aud');
    for (let i = 0; i < 6; i++) {
      await log.append({
        at: new Date(Date.UTC(2027, 0, 1, 0, 0, i)).toISOString(),
        kind: i % 2 === 0 ? 'write' : 'refused',
        actor: i < 3 ? 'alice' : 'bob',
        source: '10.0.0.1',
        requestId: `r${i}`,
        method: 'PUT',
        path: '/v1/config',
        status: i % 2 === 0 ? 200 : 403,
      });
    }
    const ids = (page: { entries: Array<{ requestId: string }> }) => page.entries.map((e) => e.requestId);
    expect(ids(await log.list({ limit: 10 }))).toEqual(['r5', 'r4', 'r3', 'r2', 'r1', 'r0']);
    expect(ids(await log.list({ limit: 10, actor: 'alice', kind: 'write' }))).toEqual(['r2', 'r0']);
    expect(ids(await log.list({ limit: 10, since: '2027-01-01T00:00:02.000Z', until: '2027-01-01T00:00:04.000Z' }))).toEqual(['r4', 'r3', 'r2']);
    const first = await log.list({ limit: 2 });
    expect(ids(first)).toEqual(['r5', 'r4']);
    expect(ids(await log.list({ limit: 2, before: first.next! }))).toEqual(['r3', 'r2']);
    expect(await log.prune(4)).toBe(2);
    expect(ids(await log.list({ limit: 10 }))).toEqual(['r5', 'r4', 'r3', 'r2']);
  });
});

describe('EtcdConfigStore.pruneVersions', () => {
  it('deletes versions below the cut except those kept', async () => {
    const store = new EtcdConfigStore({ client: client(), prefix: '/prune', logger });
    for (let v = 1; v <= 6; v++) {
      const base = await store.current();
      const config = { pools: {}, routes: {} };
      const record = { version: v, parent: v - 1, createdAt: new Date().toISOString(), author: 't', message: 'm', config };
      expect(await store.commit(record, encodeConfig(config), base)).toBe(true);
    }
    expect(await store.pruneVersions(5, new Set([2]))).toBe(3);
    expect((await store.listVersions({ limit: 10 })).map((v) => v.version)).toEqual([6, 5, 2]);
    expect(await store.pruneVersions(5, new Set([2]))).toBe(0);
  });
});
