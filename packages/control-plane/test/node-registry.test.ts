import { describe, expect, it } from 'vitest';
import { createLogger } from '@lb/shared';
import { NodeRegistry } from '../src/push/node-registry.js';
import { MemoryNodeStore } from '../src/store/memory-config-store.js';
import { waitFor } from './helpers.js';

describe('NodeRegistry', () => {
  it("rewrites held nodes' records periodically, so a dead replica's nodes show a recent last-seen time", async () => {
    const store = new MemoryNodeStore('replica-a');
    let now = new Date('2027-01-01T00:00:00Z');
    store.now = () => now;
    const registry = new NodeRegistry({ store, replica: 'replica-a', logger: createLogger('test', 'silent'), touchIntervalMs: 20 });
    try {
      registry.connect({ id: 'dp-1', address: '10.0.0.1:1', zone: '' }, () => undefined);
      await waitFor('the first record', () => store.seen.get('dp-1'));
      now = new Date('2027-01-01T06:00:00Z');
      await waitFor('a touch to move the last-seen time', () => store.seen.get('dp-1')?.lastSeenAt === '2027-01-01T06:00:00.000Z');
      // The replica dies: its live records vanish, the last known one stays with that time.
      store.loseRecords();
      registry.stop();
      expect(await store.known()).toEqual([expect.objectContaining({ id: 'dp-1', status: 'disconnected', lastSeenAt: '2027-01-01T06:00:00.000Z' })]);
    } finally {
      registry.stop();
    }
  });
});
