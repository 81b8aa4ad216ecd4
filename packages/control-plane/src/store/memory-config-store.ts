/**
 * In-memory ConfigStore and NodeStore for unit tests only (state is lost with the process, which
 * breaks invariant 5). They follow the same contract as the etcd ones, and `unavailable` makes
 * every call fail the way an unreachable etcd does.
 */
import { emptyConfig, type ConfigVersionRecord, type VersionedConfig } from '@lb/shared';
import { StoreUnavailableError } from '../errors.js';
import type { ConfigStore, ForgetResult, ListVersionsOptions, NodePutOptions, NodeRecord, NodeStore, NodeView, VersionSummary } from './config-store.js';

export class MemoryConfigStore implements ConfigStore {
  /** Set to simulate an unreachable store. */
  unavailable = false;
  /** Runs inside commit() before the compare-and-swap: lets a test slip a competing write in. */
  beforeCommit: ((record: ConfigVersionRecord) => void) | undefined;
  private readonly records = new Map<number, ConfigVersionRecord>();
  private pointer = 0;
  private readonly watchers = new Set<() => void>();

  private check(): void {
    if (this.unavailable) throw new StoreUnavailableError('store unavailable (simulated)');
  }

  async current(): Promise<VersionedConfig> {
    this.check();
    const record = this.records.get(this.pointer);
    return record ? { version: record.version, config: structuredClone(record.config) } : { version: 0, config: emptyConfig() };
  }

  async currentVersion(): Promise<number> {
    this.check();
    return this.pointer;
  }

  async getVersion(version: number): Promise<ConfigVersionRecord | undefined> {
    this.check();
    const record = this.records.get(version);
    return record && structuredClone(record);
  }

  async listVersions(options: ListVersionsOptions): Promise<VersionSummary[]> {
    this.check();
    return [...this.records.values()]
      .filter((r) => options.before === undefined || r.version < options.before)
      .sort((a, b) => b.version - a.version)
      .slice(0, options.limit)
      .map(({ config: _config, ...rest }) => rest);
  }

  async commit(record: ConfigVersionRecord): Promise<boolean> {
    this.check();
    this.beforeCommit?.(record);
    if (this.pointer !== record.parent) return false;
    this.records.set(record.version, structuredClone(record));
    this.pointer = record.version;
    for (const w of this.watchers) queueMicrotask(w);
    return true;
  }

  async pruneVersions(below: number, keep: ReadonlySet<number>): Promise<number> {
    this.check();
    let pruned = 0;
    for (const version of [...this.records.keys()]) {
      if (version < below && !keep.has(version)) {
        this.records.delete(version);
        pruned++;
      }
    }
    return pruned;
  }

  /** Commits directly (as another replica would), bypassing the REST layer. */
  forceCommit(record: Omit<ConfigVersionRecord, 'version' | 'parent'>): number {
    const version = this.pointer + 1;
    this.records.set(version, { ...structuredClone(record), version, parent: this.pointer });
    this.pointer = version;
    for (const w of this.watchers) queueMicrotask(w);
    return version;
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

export class MemoryNodeStore implements NodeStore {
  unavailable = false;
  readonly records = new Map<string, NodeRecord>();
  /** Last known records (see NodeStore.known). */
  readonly seen = new Map<string, NodeRecord & { lastSeenAt: string }>();
  now: () => Date = () => new Date();
  private readonly lostListeners: Array<() => void> = [];

  constructor(private readonly replica = 'memory') {}

  private check(): void {
    if (this.unavailable) throw new StoreUnavailableError('store unavailable (simulated)');
  }

  async put(record: NodeRecord, options: NodePutOptions = {}): Promise<boolean> {
    this.check();
    const held = this.records.get(record.id);
    const owner = held?.replica;
    if (!options.claim && owner !== undefined && owner !== this.replica) return false;
    if (options.claim && held !== undefined && owner !== this.replica && held.connectedAt > record.connectedAt) return false;
    this.records.set(record.id, structuredClone(record));
    this.seen.set(record.id, { ...structuredClone(record), lastSeenAt: this.now().toISOString() });
    return true;
  }

  async remove(id: string): Promise<void> {
    this.check();
    const record = this.records.get(id);
    if (record?.replica !== this.replica) return;
    this.records.delete(id);
    this.seen.set(id, { ...record, lastSeenAt: this.now().toISOString() });
  }

  async known(): Promise<NodeView[]> {
    this.check();
    const views = new Map<string, NodeView>();
    for (const [id, r] of this.seen) views.set(id, { ...structuredClone(r), status: 'disconnected' });
    for (const [id, r] of this.records) views.set(id, { ...structuredClone(r), status: 'connected', lastSeenAt: null });
    return [...views.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  async forget(id: string): Promise<ForgetResult> {
    this.check();
    if (this.records.has(id)) return 'connected';
    return this.seen.delete(id) ? 'forgotten' : 'unknown';
  }

  async forgetDisconnected(before: Date): Promise<string[]> {
    this.check();
    const forgotten: string[] = [];
    for (const [id, r] of this.seen) {
      if (!this.records.has(id) && Date.parse(r.lastSeenAt) < before.getTime()) {
        this.seen.delete(id);
        forgotten.push(id);
      }
    }
    return forgotten;
  }

  async list(): Promise<NodeRecord[]> {
    this.check();
    return [...this.records.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  onRecordsLost(listener: () => void): void {
    this.lostListeners.push(listener);
  }

  /** Simulates an expired lease: the records vanish and the owner is told. */
  loseRecords(): void {
    for (const [id, r] of this.records) if (r.replica === this.replica) this.records.delete(id);
    for (const l of this.lostListeners) l();
  }

  async close(): Promise<void> {
    for (const [id, r] of this.records) if (r.replica === this.replica) this.records.delete(id);
  }
}
