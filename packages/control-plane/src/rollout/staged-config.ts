/**
 * The staged version a rollout takes to its nodes, as a ConfigSource like the ConfigFeed: the same
 * chain (registrations merged, key material added) turns it into push views. It holds at most one
 * version, the active rollout's.
 */
import type { Logger } from '@lb/shared';
import type { ConfigSource } from '../push/config-feed.js';
import { Listeners } from '../push/listeners.js';
import type { ConfigStore, StoredConfig } from '../store/config-store.js';
import { encodeConfig } from '../store/encoded-config.js';

export class StagedConfigSource implements ConfigSource<StoredConfig> {
  private current: StoredConfig | undefined;
  private loading: number | undefined;
  private readonly listeners: Listeners<StoredConfig>;

  constructor(
    private readonly store: ConfigStore,
    private readonly logger: Logger,
  ) {
    this.listeners = new Listeners(logger, 'staged config listener failed');
  }

  latest(): StoredConfig | undefined {
    return this.current;
  }

  subscribe(listener: (config: StoredConfig) => void): () => void {
    return this.listeners.add(listener);
  }

  /** Loads `version` of `historyId` unless it is held or loading; failures are retried at the next call. */
  async load(version: number, historyId: string): Promise<void> {
    if ((this.current?.version === version && this.current.historyId === historyId) || this.loading === version) return;
    this.loading = version;
    try {
      const record = await this.store.getVersion(version);
      if (record === undefined) throw new Error(`version ${version} is not stored`);
      this.current = { version, historyId, config: record.config, encoded: encodeConfig(record.config), guard: undefined };
      this.listeners.notify(this.current);
    } catch (err) {
      this.logger.warn({ version, err: (err as Error).message }, 'cannot read the version a rollout takes to its nodes; retrying');
    } finally {
      this.loading = undefined;
    }
  }
}
