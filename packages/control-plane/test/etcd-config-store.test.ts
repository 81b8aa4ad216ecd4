/**
 * The config store on a real etcd: versions as small manifests over content-addressed objects,
 * large pools split into chunks, garbage collection that never races a writer, and histories.
 */
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, type Config, type ConfigVersionRecord, type Pool } from '@lb/shared';
import { EtcdServer } from '../../../test/support/etcd.js';
import type { StoredConfig } from '../src/store/config-store.js';
import { encodeConfig } from '../src/store/encoded-config.js';
import { EtcdConfigStore } from '../src/store/etcd-config-store.js';

const logger = createLogger('test', 'silent');
let etcd: EtcdServer;
const clients: Etcd3[] = [];

function client(): Etcd3 {
  const c = new Etcd3({ hosts: etcd.url });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  etcd = await EtcdServer.start();
});

afterAll(async () => {
  for (const c of clients) c.close();
  await etcd?.stop();
});

function poolOf(n: number, weight = (_i: number) => 1): Pool {
  return {
    algorithm: 'round_robin',
    backends: Array.from({ length: n }, (_, i) => ({
      id: `b-${i}`,
      address: `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}:80`,
      weight: weight(i),
      state: 'active' as const,
    })),
  };
}

async function commit(store: EtcdConfigStore, config: Config, base?: StoredConfig, staged = false): Promise<boolean> {
  const from = base ?? (await store.current());
  const record: ConfigVersionRecord = {
    ...(staged ? { staged: true } : {}),
    version: Math.max(from.version, from.staged ?? 0) + 1,
    parent: from.version,
    createdAt: new Date().toISOString(),
    author: 't',
    message: 'm',
    config,
  };
  return store.commit(record, encodeConfig(config, from.encoded), from);
}

/** Requests etcd has answered, by method (its own Prometheus counters). */
async function etcdRequests(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const line of (await (await fetch(`${etcd.url}/metrics`)).text()).split('\n')) {
    const m = /^grpc_server_handled_total\{.*grpc_method="(\w+)".*\} (\d+)/.exec(line);
    if (m) counts[m[1]!] = (counts[m[1]!] ?? 0) + Number(m[2]);
  }
  return counts;
}

async function requestsDuring(work: () => Promise<unknown>): Promise<Record<string, number>> {
  const before = await etcdRequests();
  await work();
  const after = await etcdRequests();
  return Object.fromEntries(Object.entries(after).flatMap(([method, n]) => (n > (before[method] ?? 0) ? [[method, n - (before[method] ?? 0)]] : [])));
}

async function values(prefix: string): Promise<Record<string, string>> {
  return client().getAll().prefix(prefix).strings();
}

describe('EtcdConfigStore', () => {
  it('stores each version as a small manifest over shared objects, and reads it back on a cold replica', async () => {
    const store = new EtcdConfigStore({ client: client(), prefix: '/objects', logger });
    const one: Config = { pools: { web: poolOf(3), api: poolOf(2) }, routes: {} };
    expect(await commit(store, one)).toBe(true);
    const objectsAfterOne = Object.keys(await values('/objects/config/objects/')).length;
    const two: Config = { ...one, pools: { ...one.pools, web: poolOf(3, () => 5) } };
    expect(await commit(store, two)).toBe(true);
    // The changed pool and the new resource table; the unchanged pool is shared.
    expect(Object.keys(await values('/objects/config/objects/')).length).toBe(objectsAfterOne + 2);
    const cold = new EtcdConfigStore({ client: client(), prefix: '/objects', logger });
    const current = await cold.current();
    expect(current.version).toBe(2);
    expect(current.config).toEqual(two);
    expect((await cold.getVersion(1))?.config).toEqual(one);
    const manifest = JSON.parse((await values('/objects/config/manifests/'))['/objects/config/manifests/000000000002']!);
    expect(manifest).toMatchObject({ version: 2, parent: 1, historyId: current.historyId, bytes: Buffer.byteLength(JSON.stringify(two)) });
    expect(JSON.parse((await client().get('/objects/config/current').string())!)).toEqual({ version: 2, historyId: current.historyId });
  });

  it('writes a small change in one transaction, reads the pointer and fence in one request, and follows another replica that moved the pointer', async () => {
    const mine = new EtcdConfigStore({ client: client(), prefix: '/head', logger });
    const other = new EtcdConfigStore({ client: client(), prefix: '/head', logger });
    const one: Config = { pools: { web: poolOf(2) }, routes: {} };
    expect(await commit(mine, one)).toBe(true);
    const base = await mine.current();
    const two: Config = { pools: { web: poolOf(2, () => 3) }, routes: {} };
    // The new pool, the resource table, the manifest and the pointer: one guarded transaction.
    expect(await requestsDuring(() => commit(mine, two, base))).toEqual({ Txn: 1 });
    // The pointer did not move since this replica wrote it: no manifest or object is read back.
    let read: StoredConfig | undefined;
    expect(await requestsDuring(async () => (read = await mine.current()))).toEqual({ Txn: 1 });
    expect(read).toMatchObject({ version: 2, historyId: base.historyId });
    expect(read!.config).toBe(two);
    expect(Object.isFrozen(two.pools.web!.backends[0])).toBe(true);
    // Another replica moves it: this one reads what it points at.
    const three: Config = { pools: { web: poolOf(2, () => 4) }, routes: {} };
    expect(await commit(other, three)).toBe(true);
    expect((await mine.current()).config).toEqual(three);
    expect(await commit(mine, one, read)).toBe(false);
    // A staged version moves the pointer's text, not the current config.
    expect(await commit(mine, one, undefined, true)).toBe(true);
    expect(await mine.current()).toMatchObject({ version: 3, staged: 4, config: three });
    expect(await other.current()).toMatchObject({ version: 3, staged: 4, config: three });
    expect((await mine.getVersion(4))?.config).toEqual(one);
  });

  it('splits a pool of 50,000 backends into chunks, none near etcd limit, and stores one new chunk when one backend changes', async () => {
    const store = new EtcdConfigStore({ client: client(), prefix: '/big', logger });
    const big: Config = { pools: { big: poolOf(50_000) }, routes: {} };
    expect(await commit(store, big)).toBe(true);
    const stored = await values('/big/config/objects/');
    const largest = Math.max(...Object.values(stored).map((v) => Buffer.byteLength(v)));
    expect(largest).toBeLessThan(1024 * 1024);
    expect(Object.keys(stored).some((k) => k.endsWith('.chunks'))).toBe(true);
    const changed: Config = { pools: { big: poolOf(50_000, (i) => (i === 25_000 ? 9 : 1)) }, routes: {} };
    expect(await commit(store, changed)).toBe(true);
    const added = Object.keys(await values('/big/config/objects/')).filter((k) => !(k in stored));
    // The pool's new chunk list, its changed chunk(s) and the resource table.
    expect(added.length).toBeLessThanOrEqual(5);
    const cold = new EtcdConfigStore({ client: client(), prefix: '/big', logger });
    expect((await cold.current()).config).toEqual(changed);
  });

  it('collects objects no version refers to once versions are pruned, and keeps what the rest need', async () => {
    const store = new EtcdConfigStore({ client: client(), prefix: '/gc', logger });
    for (let w = 1; w <= 5; w++) expect(await commit(store, { pools: { web: poolOf(2, () => w), fixed: poolOf(1) }, routes: {} })).toBe(true);
    expect(await store.collectGarbage()).toBe(0);
    expect(await store.pruneVersions(5, new Set([2]))).toBe(3);
    // Versions 1, 3 and 4: their `web` pools and resource tables.
    expect(await store.collectGarbage()).toBe(6);
    const cold = new EtcdConfigStore({ client: client(), prefix: '/gc', logger });
    expect((await cold.getVersion(2))?.config.pools.web?.backends[0]?.weight).toBe(2);
    expect((await cold.current()).config.pools.fixed).toEqual(poolOf(1));
  });

  it('makes a writer that read before a collection commit again rather than refer to objects it may have deleted', async () => {
    const store = new EtcdConfigStore({ client: client(), prefix: '/race', logger });
    expect(await commit(store, { pools: { a: poolOf(1) }, routes: {} })).toBe(true);
    const base = await store.current();
    await store.collectGarbage();
    expect(await commit(store, { pools: { a: poolOf(1), b: poolOf(1) }, routes: {} }, base)).toBe(false);
    expect(await commit(store, { pools: { a: poolOf(1), b: poolOf(1) }, routes: {} })).toBe(true);
    expect(Object.keys((await new EtcdConfigStore({ client: client(), prefix: '/race', logger }).current()).config.pools)).toEqual(['a', 'b']);
  });

  it('starts a new history only while the pointer is what the caller saw', async () => {
    const store = new EtcdConfigStore({ client: client(), prefix: '/fork', logger });
    expect(await commit(store, { pools: {}, routes: {} })).toBe(true);
    const seen = await store.pointer();
    expect(seen.historyId).not.toBe('');
    const forked = await store.forkHistory(seen);
    expect(forked).toBeDefined();
    expect(await store.pointer()).toEqual({ version: 1, historyId: forked });
    expect(await store.forkHistory(seen)).toBeUndefined();
    // The next version continues the new history.
    expect(await commit(store, { pools: { a: poolOf(1) }, routes: {} })).toBe(true);
    expect(await store.pointer()).toEqual({ version: 2, historyId: forked });
  });
});

describe('EtcdConfigStore.migrateLegacyVersions', () => {
  it('moves versions stored whole (the layout before manifests) to manifests over objects, once', async () => {
    const raw = client();
    const configs: Config[] = [
      { pools: { a: poolOf(1) }, routes: {} },
      { pools: { a: poolOf(2) }, routes: {} },
    ];
    for (const [i, config] of configs.entries()) {
      const record = { version: i + 1, parent: i, createdAt: '2026-01-01T00:00:00.000Z', author: 'old', message: `v${i + 1}`, config };
      await raw.put(`/legacy/config/versions/${String(i + 1).padStart(12, '0')}`).value(JSON.stringify(record));
    }
    await raw.put('/legacy/config/current').value('2');
    const store = new EtcdConfigStore({ client: client(), prefix: '/legacy', logger });
    expect(await store.migrateLegacyVersions()).toBe(2);
    expect(await store.migrateLegacyVersions()).toBe(0);
    const current = await store.current();
    expect(current).toMatchObject({ version: 2, config: configs[1] });
    expect(current.historyId).not.toBe('');
    expect(await store.getVersion(1)).toMatchObject({ version: 1, message: 'v1', author: 'old', config: configs[0] });
    expect(await raw.getAll().prefix('/legacy/config/versions/').keys()).toEqual([]);
    expect(await commit(store, { pools: {}, routes: {} })).toBe(true);
  });
});
