/**
 * In-memory ConfigStore for unit tests only (state is lost with the process, which
 * breaks invariant 5). They follow the same contract as the etcd ones, and `unavailable` makes
 * every call fail the way an unreachable etcd does.
 */
import { randomUUID } from 'node:crypto';
import { emptyConfig, type ConfigVersionRecord } from '@lb/shared';
import { StoreUnavailableError } from '../errors.js';
import { type ConfigPointer, type ConfigStore, type ListVersionsOptions, nextVersion, type StoredConfig, type VersionSummary } from './config-store.js';
import { pointerAfter, pointerText } from './version-manifest.js';
import { deepFreeze } from './deep-freeze.js';
import { encodeConfig, type EncodedConfig } from './encoded-config.js';

interface MemoryVersion {
  record: ConfigVersionRecord;
  encoded: EncodedConfig;
}

function samePointer(a: ConfigPointer, b: ConfigPointer): boolean {
  return pointerText(a) === pointerText(b);
}

export class MemoryConfigStore implements ConfigStore {
  /** Set to simulate an unreachable store. */
  unavailable = false;
  /** Runs inside commit() before the compare-and-swap: lets a test slip a competing write in. */
  beforeCommit: ((record: ConfigVersionRecord) => void) | undefined;
  private readonly versions = new Map<number, MemoryVersion>();
  private head: ConfigPointer = { version: 0, historyId: '' };
  private readonly watchers = new Set<() => void>();
  private readonly empty = encodeConfig(deepFreeze(emptyConfig()));

  private check(): void {
    if (this.unavailable) throw new StoreUnavailableError('store unavailable (simulated)');
  }

  private notify(): void {
    for (const w of this.watchers) queueMicrotask(w);
  }

  async current(): Promise<StoredConfig> {
    this.check();
    const held = this.versions.get(this.head.version);
    const guard = { ...this.head };
    if (held === undefined) return { ...this.head, config: emptyConfig(), encoded: this.empty, guard };
    return { ...this.head, config: held.record.config, encoded: held.encoded, guard };
  }

  async pointer(): Promise<ConfigPointer> {
    this.check();
    return { ...this.head };
  }

  async currentVersion(): Promise<number> {
    return (await this.pointer()).version;
  }

  async getVersion(version: number): Promise<ConfigVersionRecord | undefined> {
    this.check();
    const held = this.versions.get(version);
    return held && { ...held.record };
  }

  async listVersions(options: ListVersionsOptions): Promise<VersionSummary[]> {
    this.check();
    return [...this.versions.values()]
      .map((v) => v.record)
      .filter((r) => options.before === undefined || r.version < options.before)
      .sort((a, b) => b.version - a.version)
      .slice(0, options.limit)
      .map(({ config: _config, ...rest }) => rest);
  }

  async commit(record: ConfigVersionRecord, encoded: EncodedConfig, base: StoredConfig): Promise<boolean> {
    this.check();
    this.beforeCommit?.(record);
    const seen = base.guard as ConfigPointer;
    if (!samePointer(this.head, seen)) return false;
    this.versions.set(record.version, { record: deepFreeze({ ...record }), encoded });
    this.head = pointerAfter(seen, record, seen.historyId === '' ? randomUUID() : seen.historyId);
    this.notify();
    return true;
  }

  async promote(version: number, seen: ConfigPointer): Promise<boolean> {
    this.check();
    if (!samePointer(this.head, seen) || version <= seen.version || !this.versions.has(version)) return false;
    const staged = seen.staged !== undefined && seen.staged > version ? seen.staged : undefined;
    this.head = { version, historyId: seen.historyId, ...(staged ? { staged } : {}) };
    this.notify();
    return true;
  }

  async forkHistory(seen: ConfigPointer): Promise<string | undefined> {
    this.check();
    if (!samePointer(this.head, seen)) return undefined;
    this.head = { ...seen, historyId: randomUUID() };
    this.notify();
    return this.head.historyId;
  }

  async pruneVersions(below: number, keep: ReadonlySet<number>): Promise<number> {
    this.check();
    let pruned = 0;
    for (const version of [...this.versions.keys()]) {
      if (version < below && !keep.has(version)) {
        this.versions.delete(version);
        pruned++;
      }
    }
    return pruned;
  }

  /** Nothing is shared between versions here, so there is never anything to collect. */
  async collectGarbage(): Promise<number> {
    this.check();
    return 0;
  }

  /** Commits directly (as another replica would), bypassing the REST layer. */
  forceCommit(record: Omit<ConfigVersionRecord, 'version' | 'parent'>): number {
    const version = nextVersion(this.head);
    const stored = deepFreeze({ ...structuredClone(record), version, parent: this.head.version });
    this.versions.set(version, { record: stored, encoded: encodeConfig(stored.config) });
    this.head = { version, historyId: this.head.historyId === '' ? randomUUID() : this.head.historyId };
    this.notify();
    return version;
  }

  /** Puts the pointer back to an older version of the same history, as an etcd restored from a backup would. */
  restore(version: number): void {
    this.head = { version, historyId: this.head.historyId };
    for (const v of [...this.versions.keys()]) if (v > version) this.versions.delete(v);
    this.notify();
  }

  watchCurrent(onChange: () => void): () => void {
    this.watchers.add(onChange);
    queueMicrotask(onChange);
    return () => this.watchers.delete(onChange);
  }

  async ping(): Promise<void> {
    this.check();
  }

  async close(): Promise<void> {
    this.watchers.clear();
  }
}
