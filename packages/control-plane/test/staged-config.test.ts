import { describe, expect, it } from 'vitest';
import { createLogger, type Config, type ConfigVersionRecord } from '@lb/shared';
import { StagedConfigSource } from '../src/rollout/staged-config.js';
import type { ConfigStore } from '../src/store/config-store.js';

const logger = createLogger('test', 'silent');
const config = { pools: {}, routes: {} } as unknown as Config;

/** A store that holds version 7 only: all the staged source reads. */
const store = {
  async getVersion(version: number): Promise<ConfigVersionRecord | undefined> {
    return version === 7 ? ({ version, parent: 6, createdAt: '2026-12-02T00:00:00Z', author: 'test', message: '', config } as ConfigVersionRecord) : undefined;
  },
} as unknown as ConfigStore;

describe('the staged config source', () => {
  it('tells every listener of a loaded version, even when one of them throws', async () => {
    const staged = new StagedConfigSource(store, logger);
    const heard: number[] = [];
    staged.subscribe(() => {
      throw new Error('a broken listener');
    });
    staged.subscribe((c) => heard.push(c.version));
    await staged.load(7, 'h1');
    expect(heard).toEqual([7]);
    expect(staged.latest()?.version).toBe(7);
    // Held now: loading it again tells nobody.
    await staged.load(7, 'h1');
    expect(heard).toEqual([7]);
  });
});
