import { describe, expect, it } from 'vitest';
import { createLogger } from '@lb/shared';
import { MemoryAuditLog } from '../src/audit/audit-log.js';
import { Retention } from '../src/retention/retention.js';
import { MemoryConfigStore } from '../src/store/memory-config-store.js';
import { MemoryNodeStore } from '../src/store/memory-node-store.js';
import { waitFor } from './helpers.js';

const logger = createLogger('test', 'silent');

function commits(store: MemoryConfigStore, n: number): void {
  for (let i = 0; i < n; i++) store.forceCommit({ createdAt: new Date().toISOString(), author: 't', message: `v${i + 1}`, config: { pools: {}, routes: {} } });
}

const node = (id: string, configVersion: number) => ({
  id,
  address: '10.0.0.1:1',
  zone: '',
  connectedAt: new Date().toISOString(),
  configVersion,
  healthRevision: 0,
  lastNack: null,
  replica: 'memory',
});

describe('Retention', () => {
  it('keeps the newest versions, the current one, and every version a known node runs', async () => {
    const store = new MemoryConfigStore();
    const nodes = new MemoryNodeStore();
    commits(store, 10);
    await nodes.connect(node('connected', 3));
    await nodes.connect(node('gone', 2));
    await nodes.disconnect('gone');
    let collections = 0;
    store.collectGarbage = async () => ++collections;
    const retention = new Retention({ store, nodes, audit: new MemoryAuditLog(), logger, keepVersions: 4, nodeRetentionMs: 86_400_000, keepAuditEntries: 100 });
    const report = await retention.runOnce();
    expect(report.versions).toBe(4);
    // Pruned versions may leave stored objects nobody refers to: they are collected in the same run.
    expect(report.objects).toBe(1);
    const kept = (await store.listVersions({ limit: 100 })).map((v) => v.version);
    expect(kept).toEqual([10, 9, 8, 7, 3, 2]);
    // Once the disconnected node is forgotten, its version goes too.
    await nodes.forget('gone');
    await retention.runOnce();
    expect((await store.listVersions({ limit: 100 })).map((v) => v.version)).toEqual([10, 9, 8, 7, 3]);
    expect(collections).toBe(2);
    // Nothing pruned, collected recently: no collection.
    await retention.runOnce();
    expect(collections).toBe(2);
  });

  it("skips the pointer read while the feed's version is within keepVersions, and cuts at the store's pointer, not a feed ahead of it", async () => {
    const store = new MemoryConfigStore();
    commits(store, 5);
    let pointerReads = 0;
    const currentVersion = store.currentVersion.bind(store);
    store.currentVersion = () => {
      pointerReads++;
      return currentVersion();
    };
    let known = 3;
    const retention = new Retention({
      store,
      nodes: new MemoryNodeStore(),
      audit: new MemoryAuditLog(),
      logger,
      keepVersions: 3,
      nodeRetentionMs: 86_400_000,
      keepAuditEntries: 100,
      knownVersion: () => known,
    });
    expect((await retention.runOnce()).versions).toBe(0);
    expect(pointerReads).toBe(0);
    // The feed still holds version 50 of a history etcd was restored to before: the store's pointer says 5.
    known = 50;
    expect((await retention.runOnce()).versions).toBe(2);
    expect(pointerReads).toBe(1);
    expect((await store.listVersions({ limit: 100 })).map((v) => v.version)).toEqual([5, 4, 3]);
  });

  it('looks again soon when a node record kept a version: records lag the nodes they describe', async () => {
    const store = new MemoryConfigStore();
    const nodes = new MemoryNodeStore();
    commits(store, 5);
    // The record says version 2, though the node has moved on (its record is written in batches).
    await nodes.connect(node('behind', 2));
    const retention = new Retention({
      store,
      nodes,
      audit: new MemoryAuditLog(),
      logger,
      keepVersions: 2,
      nodeRetentionMs: 86_400_000,
      keepAuditEntries: 100,
      inUseRecheckMs: 50,
    });
    retention.start();
    try {
      await waitFor('the first run', async () => (await store.listVersions({ limit: 100 })).length === 3);
      expect((await store.listVersions({ limit: 100 })).map((v) => v.version)).toEqual([5, 4, 2]);
      await nodes.connect(node('behind', 5));
      await waitFor('the recheck to prune version 2', async () => (await store.listVersions({ limit: 100 })).length === 2);
    } finally {
      retention.stop();
    }
  });

  it('keeps everything with keepVersions 0, forgets nodes past their retention, trims the audit trail', async () => {
    let now = new Date('2027-01-01T00:00:00Z');
    const store = new MemoryConfigStore();
    const nodes = new MemoryNodeStore();
    nodes.now = () => now;
    const audit = new MemoryAuditLog();
    commits(store, 5);
    await nodes.connect(node('old', 1));
    await nodes.disconnect('old');
    for (let i = 0; i < 5; i++)
      await audit.append({
        at: new Date(Date.UTC(2027, 0, 1, 0, 0, i)).toISOString(),
        kind: 'write',
        actor: 'a',
        source: 's',
        requestId: `r${i}`,
        method: 'PUT',
        path: '/',
        status: 200,
      });
    const retention = new Retention({ store, nodes, audit, logger, keepVersions: 0, nodeRetentionMs: 60_000, keepAuditEntries: 2, now: () => now });
    now = new Date('2027-01-01T00:00:59Z');
    expect(await retention.runOnce()).toEqual({ versions: 0, objects: 0, nodes: [], auditEntries: 3 });
    expect(audit.entries.map((e) => e.requestId)).toEqual(['r3', 'r4']);
    now = new Date('2027-01-01T00:01:01Z');
    expect((await retention.runOnce()).nodes).toEqual(['old']);
    expect(await nodes.known()).toEqual([]);
    expect((await store.listVersions({ limit: 100 })).length).toBe(5);
  });
});
