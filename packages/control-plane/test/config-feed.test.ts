import { describe, expect, it } from 'vitest';
import { createLogger, type VersionedConfig } from '@lb/shared';
import { ConfigFeed } from '../src/push/config-feed.js';
import { MemoryConfigStore } from '../src/store/memory-config-store.js';
import { waitFor } from './helpers.js';

const logger = createLogger('test', 'silent');
const commit = (store: MemoryConfigStore) =>
  store.forceCommit({ createdAt: new Date().toISOString(), author: 'a', message: 'm', config: { pools: {}, routes: {} } });

describe('ConfigFeed', () => {
  it('hands listeners every newer version in order, never the same or an older one', async () => {
    const store = new MemoryConfigStore();
    commit(store);
    const feed = new ConfigFeed({ store, logger });
    const seen: number[] = [];
    feed.subscribe((c: VersionedConfig) => seen.push(c.version));
    feed.start();
    await feed.ready();
    commit(store);
    commit(store);
    await waitFor('version 3', () => feed.latest()?.version === 3);
    await feed.refresh();
    expect(seen).toEqual([1, 2, 3].filter((v) => seen.includes(v)));
    expect(seen[0]).toBe(1);
    expect(seen.at(-1)).toBe(3);
    feed.stop();
  });

  it('does not follow a store that goes back in time (restored from an old backup)', async () => {
    let version = 5;
    const store = new MemoryConfigStore();
    store.currentVersion = async () => version;
    store.current = async () => ({ version, config: { pools: {}, routes: {} } });
    const feed = new ConfigFeed({ store, logger });
    const seen: number[] = [];
    feed.subscribe((c) => seen.push(c.version));
    feed.start();
    await feed.ready();
    version = 3;
    await feed.refresh();
    version = 6;
    await feed.refresh();
    expect(seen).toEqual([5, 6]);
    expect(feed.latest()?.version).toBe(6);
    feed.stop();
  });

  it('keeps retrying while the store is down and becomes ready once it answers', async () => {
    const store = new MemoryConfigStore();
    commit(store);
    store.unavailable = true;
    const feed = new ConfigFeed({ store, logger, retryDelayMs: 10 });
    feed.start();
    const ready = feed.ready();
    expect(feed.latest()).toBeUndefined();
    store.unavailable = false;
    expect((await ready).version).toBe(1);
    feed.stop();
  });
});
