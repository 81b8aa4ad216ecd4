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

  it('starts a new history when the store goes back in time (restored from an old backup), and follows it', async () => {
    const store = new MemoryConfigStore();
    for (let i = 0; i < 5; i++) commit(store);
    const feed = new ConfigFeed({ store, logger });
    const seen: Array<[number, string]> = [];
    feed.subscribe((c) => seen.push([c.version, c.historyId]));
    feed.start();
    await feed.ready();
    const original = feed.latest()!.historyId;
    store.restore(3);
    await waitFor('a new history at version 3', () => feed.latest()?.version === 3);
    const forked = feed.latest()!.historyId;
    expect(forked).not.toBe(original);
    expect((await store.pointer()).historyId).toBe(forked);
    commit(store);
    await waitFor('version 4 of the new history', () => feed.latest()?.version === 4);
    expect(seen).toEqual([
      [5, original],
      [3, forked],
      [4, forked],
    ]);
    feed.stop();
  });

  it('starts a new history when a node ran a later version of the current history than the store has', async () => {
    const store = new MemoryConfigStore();
    commit(store);
    commit(store);
    const feed = new ConfigFeed({ store, logger });
    feed.start();
    const { historyId } = await feed.ready();
    // A replica that merely lags catches up instead:
    commit(store);
    feed.noticeVersion({ historyId, version: 3 });
    await waitFor('caught up', () => feed.latest()?.version === 3);
    expect(feed.latest()!.historyId).toBe(historyId);
    feed.noticeVersion({ historyId, version: 9 });
    await waitFor('a new history', () => feed.latest()?.historyId !== historyId);
    expect(feed.latest()!.version).toBe(3);
    // Versions of histories it no longer follows change nothing.
    const forked = feed.latest()!.historyId;
    feed.noticeVersion({ historyId, version: 20 });
    await feed.refresh();
    expect(feed.latest()!.historyId).toBe(forked);
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
