import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { VersionedConfig } from '@lb/shared';
import type { ConfigSource } from '../src/push/config-feed.js';
import type { StoredConfig } from '../src/store/config-store.js';
import { encodeConfig } from '../src/store/encoded-config.js';
import { MergedConfigSource } from '../src/push/merged-config.js';
import { MemoryRegistrationStore, type Registration } from '../src/store/registration-store.js';
import { waitFor } from './helpers.js';

const logger = pino({ level: 'silent' });

describe('MergedConfigSource', () => {
  it('publishes nothing before the registrations were read once, so no one sees a pool without its registered backends', async () => {
    const stored = {
      pools: { web: { algorithm: 'round_robin' as const, backends: [{ id: 'a', address: '10.0.0.1:80', weight: 1, state: 'active' as const }] } },
      routes: {},
    };
    const base: StoredConfig = { version: 1, historyId: 'h', config: stored, encoded: encodeConfig(stored), guard: undefined };
    const config: ConfigSource<StoredConfig> = { latest: () => base, subscribe: () => () => undefined };
    /** Registrations whose first list answers only when told to. */
    class SlowStore extends MemoryRegistrationStore {
      release: (() => void) | undefined;
      override async list(pool?: string): Promise<Registration[]> {
        const items = await super.list(pool);
        if (this.release === undefined) await new Promise<void>((r) => (this.release = r));
        return items;
      }
    }
    const registrations = new SlowStore();
    await registrations.register('web', { id: 'auto-1', address: '10.0.0.9:80', weight: 1, state: 'active' }, 30);
    const merged = new MergedConfigSource({ config, registrations, logger });
    const seen: VersionedConfig[] = [];
    merged.subscribe((c) => seen.push(c));
    merged.start();
    await waitFor('first list under way', () => registrations.release !== undefined);
    expect(merged.latest()).toBeUndefined();
    expect(seen).toEqual([]);
    registrations.release!();
    await waitFor('published', () => merged.latest() !== undefined);
    expect(merged.latest()!.config.pools.web!.backends.map((b) => b.id)).toEqual(['a', 'auto-1']);
    expect(seen.map((c) => c.config.pools.web!.backends.length)).toEqual([2]);
    merged.stop();
  });
});
