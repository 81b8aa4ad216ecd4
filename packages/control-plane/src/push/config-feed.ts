/**
 * The newest config version this replica knows, kept current from etcd's watch (plus a periodic
 * re-read, so a missed event heals), and handed to the streams in order.
 *
 * It enforces the one rule for versions going backwards (README, "The CP–DP protocol"): within a
 * history, versions only grow. A listener never gets a version lower than or equal to one it got in
 * the same history. When the store shows a lower version of the history than one this replica or a
 * connected node has seen — etcd restored from an older snapshot — the feed starts a new history at
 * the store's version (ConfigStore.forkHistory, guarded by the pointer) and follows it: every node
 * then gets that version as a full snapshot, and version numbers after it name new configs only.
 */
import type { Logger, VersionedConfig } from '@lb/shared';
import type { CpMetrics } from '../metrics.js';
import { type ConfigPointer, type ConfigStore, nextVersion, type StoredConfig } from '../store/config-store.js';
import { Listeners } from './listeners.js';

/** What the stream server and the health checker need from a source of configs (a seam for tests). */
export interface ConfigSource<T extends VersionedConfig = VersionedConfig> {
  /** Undefined until the first successful read from the store. */
  latest(): T | undefined;
  /** `listener` gets every newer config, in order. Returns an unsubscribe function. */
  subscribe(listener: (config: T) => void): () => void;
}

export interface ConfigFeedOptions {
  store: ConfigStore;
  logger: Logger;
  metrics?: CpMetrics;
  /** Delay before re-reading after a failed read (etcd down at start or later). */
  retryDelayMs?: number;
}

export class ConfigFeed implements ConfigSource<StoredConfig> {
  private current: StoredConfig | undefined;
  /** The highest version seen per history, by this replica or reported by a node (see noticeVersion). */
  private readonly highest = new Map<string, number>();
  private readonly listeners: Listeners<StoredConfig>;
  private reading = false;
  private readAgain = false;
  private stopped = false;
  private stopWatch: (() => void) | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly retryDelayMs: number;
  /** Settles after the first read attempt finished (successfully or not); for tests and logs. */
  private firstRead: Promise<void> | undefined;

  constructor(private readonly options: ConfigFeedOptions) {
    this.retryDelayMs = options.retryDelayMs ?? 1_000;
    this.listeners = new Listeners(options.logger, 'config listener failed');
  }

  start(): void {
    this.stopWatch = this.options.store.watchCurrent(() => void this.refresh());
    this.firstRead = this.refresh();
  }

  /** Resolves once a version has been read (waits through etcd outages). */
  async ready(): Promise<StoredConfig> {
    await this.firstRead;
    const latest = this.current;
    if (latest) return latest;
    return new Promise((resolve) => {
      const off = this.subscribe((config) => {
        off();
        resolve(config);
      });
    });
  }

  latest(): StoredConfig | undefined {
    return this.current;
  }

  subscribe(listener: (config: StoredConfig) => void): () => void {
    return this.listeners.add(listener);
  }

  /**
   * A node says it ran `version` of `historyId` (its Hello). Beyond what this replica knows of that
   * history, either this replica lags (a re-read catches up) or the store lost versions (the
   * re-read starts a new history).
   */
  noticeVersion(seen: ConfigPointer): void {
    if (seen.historyId === '' || seen.version <= (this.highest.get(seen.historyId) ?? 0)) return;
    this.highest.set(seen.historyId, seen.version);
    if (this.current?.historyId === seen.historyId) void this.refresh();
  }

  /** Re-reads the current version; concurrent calls collapse into one more read, never overlap. */
  refresh(): Promise<void> {
    if (this.reading) {
      this.readAgain = true;
      return Promise.resolve();
    }
    this.reading = true;
    return (async () => {
      try {
        do {
          this.readAgain = false;
          await this.readOnce();
        } while (this.readAgain && !this.stopped);
      } finally {
        this.reading = false;
      }
    })();
  }

  private async readOnce(): Promise<void> {
    let next: StoredConfig;
    try {
      // The store answers from memory when the pointer did not move (the periodic re-read, the
      // write this replica just made): one small etcd request.
      next = await this.options.store.current();
      // A node may run a staged version (a rollout's canary): the store holds it, it is not lost.
      if (next.historyId !== '' && nextVersion(next) - 1 < (this.highest.get(next.historyId) ?? 0)) {
        await this.startNewHistory({ version: next.version, historyId: next.historyId, ...(next.staged !== undefined ? { staged: next.staged } : {}) });
        return;
      }
    } catch (err) {
      this.options.logger.warn({ err: (err as Error).message }, 'cannot read the current config; retrying');
      this.retryLater();
      return;
    }
    const known = this.current;
    // Nothing new (a re-read), or a lagging read: only ever move forward in a history.
    if (this.stopped || (known && next.historyId === known.historyId && next.version <= known.version)) return;
    if (next.historyId !== '') this.highest.set(next.historyId, Math.max(next.version, this.highest.get(next.historyId) ?? 0));
    if (known && next.historyId !== known.historyId) {
      this.options.logger.warn(
        { history: next.historyId, version: next.version, was: { history: known.historyId, version: known.version } },
        'config history changed',
      );
    }
    this.current = next;
    this.options.metrics?.configVersion.set(next.version);
    this.options.logger.info({ version: next.version, history: next.historyId }, 'config version is now current');
    this.listeners.notify(next);
  }

  private async startNewHistory(pointer: ConfigPointer): Promise<void> {
    const seen = this.highest.get(pointer.historyId);
    const historyId = await this.options.store.forkHistory(pointer);
    this.options.logger.warn(
      { history: pointer.historyId, storeVersion: pointer.version, seenVersion: seen, newHistory: historyId ?? '(another replica started it)' },
      'the store went back to an older version (restored from a backup?): starting a new history at its version',
    );
    // Whoever started it, the pointer moved: read it again.
    this.readAgain = true;
  }

  private retryLater(): void {
    if (this.retryTimer || this.stopped) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.refresh();
    }, this.retryDelayMs);
  }

  stop(): void {
    this.stopped = true;
    this.stopWatch?.();
    clearTimeout(this.retryTimer);
    this.listeners.clear();
  }
}
