/** ConfigStore on etcd: the layout in keys.ts, one transaction per commit guarded by the pointer. */
import type { Etcd3 } from 'etcd3';
import { emptyConfig, type ConfigVersionRecord, type Logger, type VersionedConfig } from '@lb/shared';
import type { ConfigStore, ListVersionsOptions, VersionSummary } from './config-store.js';
import { guarded } from './etcd-client.js';
import { EtcdKeys } from './keys.js';

export interface EtcdConfigStoreOptions {
  client: Etcd3;
  prefix: string;
  logger: Logger;
  /** Overall deadline of one store operation, retries included. */
  deadlineMs?: number;
  /** How often to re-read the pointer even without watch events (a missed event heals by then). */
  resyncIntervalMs?: number;
}

function summary(record: ConfigVersionRecord): VersionSummary {
  const { config: _config, ...rest } = record;
  return rest;
}

export class EtcdConfigStore implements ConfigStore {
  private readonly client: Etcd3;
  private readonly keys: EtcdKeys;
  private readonly logger: Logger;
  private readonly deadlineMs: number;
  private readonly resyncIntervalMs: number;
  private readonly stops = new Set<() => void>();

  constructor(options: EtcdConfigStoreOptions) {
    this.client = options.client;
    this.keys = new EtcdKeys(options.prefix);
    this.logger = options.logger;
    this.deadlineMs = options.deadlineMs ?? 4_000;
    this.resyncIntervalMs = options.resyncIntervalMs ?? 5_000;
  }

  private async pointer(): Promise<number> {
    const value = await this.client.get(this.keys.current).string();
    if (value === null) return 0;
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${this.keys.current} holds "${value}", not a version`);
    return n;
  }

  private async record(version: number): Promise<ConfigVersionRecord | undefined> {
    const value = await this.client.get(this.keys.version(version)).string();
    return value === null ? undefined : (JSON.parse(value) as ConfigVersionRecord);
  }

  current(): Promise<VersionedConfig> {
    return guarded('reading the current config', this.deadlineMs, async () => {
      const version = await this.pointer();
      if (version === 0) return { version: 0, config: emptyConfig() };
      // Records are immutable, so reading the pointer and then its record is consistent.
      const record = await this.record(version);
      if (!record) throw new Error(`version ${version} is current but its record is missing`);
      return { version, config: record.config };
    });
  }

  currentVersion(): Promise<number> {
    return guarded('reading the current version', this.deadlineMs, () => this.pointer());
  }

  getVersion(version: number): Promise<ConfigVersionRecord | undefined> {
    if (version < 1) return Promise.resolve(undefined);
    return guarded(`reading version ${version}`, this.deadlineMs, () => this.record(version));
  }

  listVersions(options: ListVersionsOptions): Promise<VersionSummary[]> {
    return guarded('listing versions', this.deadlineMs, async () => {
      const start = this.keys.version(1);
      // Padded keys sort numerically, so "below `before`" is a key range.
      const end = options.before === undefined ? `${this.keys.version(10 ** 12 - 1)}\u0000` : this.keys.version(options.before);
      if (end <= start) return [];
      const values = await this.client.getAll().inRange({ start, end }).sort('Key', 'Descend').limit(options.limit).strings();
      return Object.values(values)
        .map((v) => summary(JSON.parse(v) as ConfigVersionRecord))
        .sort((a, b) => b.version - a.version);
    });
  }

  commit(record: ConfigVersionRecord): Promise<boolean> {
    return guarded(`committing version ${record.version}`, this.deadlineMs, async () => {
      // Version 0 is "no pointer yet": compare create revision 0, which etcd reads as "key absent".
      const txn =
        record.parent === 0 ? this.client.if(this.keys.current, 'Create', '==', 0) : this.client.if(this.keys.current, 'Value', '==', String(record.parent));
      const result = await txn
        .then(
          this.client.put(this.keys.version(record.version)).value(JSON.stringify(record)),
          this.client.put(this.keys.current).value(String(record.version)),
        )
        .commit();
      return result.succeeded;
    });
  }

  pruneVersions(below: number, keep: ReadonlySet<number>): Promise<number> {
    return guarded(`pruning versions below ${below}`, this.deadlineMs, async () => {
      if (below <= 1) return 0;
      const keys = await this.client
        .getAll()
        .inRange({ start: this.keys.version(1), end: this.keys.version(below) })
        .keys();
      const doomed = keys.filter((key) => !keep.has(Number(key.slice(this.keys.versionsPrefix.length))));
      // A hundred at a time: a first run over a long history must not flood etcd.
      for (let at = 0; at < doomed.length; at += 100) {
        await Promise.all(doomed.slice(at, at + 100).map((key) => this.client.delete().key(key).exec()));
      }
      return doomed.length;
    });
  }

  watchCurrent(onChange: () => void): () => void {
    let stopped = false;
    // The watch resumes from its last revision after a reconnect and fires `connected`; the
    // periodic resync covers everything else (a cancelled watch, the watch's own long backoff).
    const watcher = this.client.watch().key(this.keys.current).watcher();
    watcher.on('connected', () => onChange());
    watcher.on('put', () => onChange());
    watcher.on('disconnected', (err) => this.logger.warn({ err: err.message }, 'etcd watch disconnected; reconnecting'));
    watcher.on('error', (err) => this.logger.warn({ err: err.message }, 'etcd watch error'));
    const resync = setInterval(() => onChange(), this.resyncIntervalMs);
    resync.unref();
    const stop = (): void => {
      if (stopped) return;
      stopped = true;
      this.stops.delete(stop);
      clearInterval(resync);
      watcher.cancel().catch(() => undefined);
    };
    this.stops.add(stop);
    return stop;
  }

  ping(): Promise<void> {
    return guarded('answering a ping', this.deadlineMs, async () => {
      await this.client.get(this.keys.current).string();
    });
  }

  /** Stops the watches; the etcd client belongs to whoever created it (main.ts) and stays open. */
  async close(): Promise<void> {
    for (const stop of [...this.stops]) stop();
  }
}
