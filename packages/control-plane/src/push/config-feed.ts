/**
 * The newest config version this replica knows, kept current from etcd's watch (plus a periodic
 * re-read, so a missed event heals), and handed to the streams in order: a listener never sees a
 * version lower than or equal to one it already got.
 */
import type { Logger, VersionedConfig } from '@lb/shared';
import type { CpMetrics } from '../metrics.js';
import type { ConfigStore } from '../store/config-store.js';

/** What the stream server needs from the feed (a seam for tests). */
export interface ConfigSource {
  /** Undefined until the first successful read from the store. */
  latest(): VersionedConfig | undefined;
  /** `listener` gets every newer version, in increasing order. Returns an unsubscribe function. */
  subscribe(listener: (config: VersionedConfig) => void): () => void;
}

export interface ConfigFeedOptions {
  store: ConfigStore;
  logger: Logger;
  metrics?: CpMetrics;
  /** Delay before re-reading after a failed read (etcd down at start or later). */
  retryDelayMs?: number;
}

export class ConfigFeed implements ConfigSource {
  private current: VersionedConfig | undefined;
  private readonly listeners = new Set<(config: VersionedConfig) => void>();
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
  }

  start(): void {
    this.stopWatch = this.options.store.watchCurrent(() => void this.refresh());
    this.firstRead = this.refresh();
  }

  /** Resolves once a version has been read (waits through etcd outages). */
  async ready(): Promise<VersionedConfig> {
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

  latest(): VersionedConfig | undefined {
    return this.current;
  }

  subscribe(listener: (config: VersionedConfig) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
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
    let next: VersionedConfig;
    try {
      // The pointer first: the periodic re-read must not fetch a large config that did not change.
      const version = await this.options.store.currentVersion();
      const known = this.current;
      if (known && version <= known.version) {
        if (version < known.version) {
          this.options.logger.warn({ known: known.version, store: version }, 'the store reports an older version than already pushed; keeping the newer one');
        }
        return;
      }
      next = await this.options.store.current();
    } catch (err) {
      this.options.logger.warn({ err: (err as Error).message }, 'cannot read the current config; retrying');
      this.retryLater();
      return;
    }
    // current() may have moved past the pointer read above; only ever move forward.
    if (this.stopped || (this.current && next.version <= this.current.version)) return;
    this.current = next;
    this.options.metrics?.configVersion.set(next.version);
    this.options.logger.info({ version: next.version }, 'config version is now current');
    for (const listener of [...this.listeners]) {
      try {
        listener(next);
      } catch (err) {
        this.options.logger.error({ err }, 'config listener failed');
      }
    }
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
