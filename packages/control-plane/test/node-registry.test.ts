import { describe, expect, it } from 'vitest';
import { createLogger } from '@lb/shared';
import { NodeRegistry } from '../src/push/node-registry.js';
import { MemoryNodeStore } from '../src/store/memory-node-store.js';
import { waitFor } from './helpers.js';

const logger = createLogger('test', 'silent');

describe('NodeRegistry', () => {
  it('keeps node state in memory and writes it in batches, not once per ACK', async () => {
    const store = new MemoryNodeStore('replica-a');
    const registry = new NodeRegistry({ store, replica: 'replica-a', logger, flushIntervalMs: 60_000 });
    try {
      const handles = Array.from({ length: 50 }, (_, i) => registry.connect({ id: `dp-${i}`, address: '10.0.0.1:1', zone: '' }, () => undefined));
      for (let version = 1; version <= 20; version++) for (const h of handles) h.acked('config', version);
      expect(store.publishes).toBe(0);
      await registry.flush();
      expect(store.publishes).toBe(1);
      expect([...store.records.values()].map((r) => r.configVersion)).toEqual(Array(50).fill(20));
      // Nothing changed: nothing written.
      await registry.flush();
      expect(store.publishes).toBe(1);
      handles[0]!.disconnect();
      await registry.flush();
      expect(store.records.has('dp-0')).toBe(false);
      expect(store.seen.get('dp-0')).toMatchObject({ configVersion: 20 });
    } finally {
      registry.stop();
    }
  });

  it('keeps what it could not write while the store is away, and writes it once it is back', async () => {
    const store = new MemoryNodeStore('replica-a');
    const registry = new NodeRegistry({ store, replica: 'replica-a', logger, flushIntervalMs: 60_000 });
    try {
      const handle = registry.connect({ id: 'dp-1', address: '10.0.0.1:1', zone: '' }, () => undefined);
      store.unavailable = true;
      handle.acked('config', 3);
      await registry.flush();
      expect(store.records.size).toBe(0);
      store.unavailable = false;
      await registry.flush();
      expect(store.records.get('dp-1')).toMatchObject({ configVersion: 3 });
      // The lease lapsed: every shard is published again.
      store.loseRecords();
      await registry.flush();
      expect(store.records.get('dp-1')).toMatchObject({ configVersion: 3 });
    } finally {
      registry.stop();
    }
  });

  it("rewrites held nodes' last known records periodically, so a dead replica's nodes show a recent last-seen time", async () => {
    const store = new MemoryNodeStore('replica-a');
    let now = new Date('2027-01-01T00:00:00Z');
    store.now = () => now;
    const registry = new NodeRegistry({ store, replica: 'replica-a', logger, touchIntervalMs: 20, flushIntervalMs: 10 });
    try {
      registry.connect({ id: 'dp-1', address: '10.0.0.1:1', zone: '' }, () => undefined);
      await waitFor('the first record', () => store.seen.get('dp-1'));
      now = new Date('2027-01-01T06:00:00Z');
      await waitFor('a touch to move the last-seen time', () => store.seen.get('dp-1')?.lastSeenAt === '2027-01-01T06:00:00.000Z');
      // The replica dies: its live records vanish, the last known one stays with that time.
      registry.stop();
      store.loseRecords();
      expect(await store.known()).toEqual([expect.objectContaining({ id: 'dp-1', status: 'disconnected', lastSeenAt: '2027-01-01T06:00:00.000Z' })]);
    } finally {
      registry.stop();
    }
  });
});
