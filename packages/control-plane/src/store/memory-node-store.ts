/**
 * In-memory NodeStore for unit tests only (state is lost with the process). Same contract as the
 * etcd one; `unavailable` makes every call fail the way an unreachable etcd does, and
 * loseRecords() simulates an expired lease.
 */
import { StoreUnavailableError } from '../errors.js';
import { nodeViews, shardOf, type ForgetResult, type NodeRecord, type NodeStore, type NodeView, type SeenRecord } from './node-store.js';

export class MemoryNodeStore implements NodeStore {
  unavailable = false;
  /** Published shards by `<replica>/<shard>` (another replica's may be added by a test). */
  readonly shards = new Map<string, readonly NodeRecord[]>();
  /** Last known records. */
  readonly seen = new Map<string, SeenRecord>();
  now: () => Date = () => new Date();
  /** Calls to publish(), for tests of batching. */
  publishes = 0;
  private readonly lostListeners: Array<() => void> = [];

  constructor(private readonly replica = 'memory') {}

  private check(): void {
    if (this.unavailable) throw new StoreUnavailableError('store unavailable (simulated)');
  }

  /** Every published record by node id (the latest stream where a node is on two replicas). */
  get records(): Map<string, NodeRecord> {
    const out = new Map<string, NodeRecord>();
    for (const view of nodeViews([...this.shards.values()].flat(), [])) {
      const { status: _status, lastSeenAt: _seen, ...record } = view;
      out.set(record.id, record);
    }
    return out;
  }

  async publish(shards: ReadonlyMap<number, readonly NodeRecord[]>): Promise<void> {
    this.check();
    this.publishes++;
    for (const [shard, records] of shards) {
      const key = `${this.replica}/${shard}`;
      if (records.length === 0) this.shards.delete(key);
      else this.shards.set(key, structuredClone(records));
    }
  }

  async markSeen(records: readonly NodeRecord[]): Promise<void> {
    this.check();
    const latest = new Map<string, string>();
    for (const r of [...[...this.shards.values()].flat(), ...this.seen.values()]) {
      if ((latest.get(r.id) ?? '') < r.connectedAt) latest.set(r.id, r.connectedAt);
    }
    for (const record of records) {
      if ((latest.get(record.id) ?? '') > record.connectedAt) continue;
      this.seen.set(record.id, { ...structuredClone(record), lastSeenAt: this.now().toISOString() });
    }
  }

  async known(held: readonly NodeRecord[] = []): Promise<NodeView[]> {
    this.check();
    return nodeViews([...held, ...[...this.shards.values()].flat()], this.seen.values());
  }

  async forget(id: string): Promise<ForgetResult> {
    this.check();
    if (this.records.has(id)) return 'connected';
    return this.seen.delete(id) ? 'forgotten' : 'unknown';
  }

  async forgetDisconnected(before: Date): Promise<string[]> {
    this.check();
    const connected = this.records;
    const forgotten: string[] = [];
    for (const [id, r] of this.seen) {
      if (!connected.has(id) && Date.parse(r.lastSeenAt) < before.getTime()) {
        this.seen.delete(id);
        forgotten.push(id);
      }
    }
    return forgotten;
  }

  /** Test shortcut: `record` connected on this replica, published and seen as the registry would. */
  async connect(record: NodeRecord): Promise<void> {
    const key = `${this.replica}/${shardOf(record.id)}`;
    await this.publish(new Map([[shardOf(record.id), [...(this.shards.get(key) ?? []).filter((r) => r.id !== record.id), record]]]));
    await this.markSeen([record]);
  }

  /** Test shortcut: the node's stream on this replica ended. */
  async disconnect(id: string): Promise<void> {
    const key = `${this.replica}/${shardOf(id)}`;
    const held = this.shards.get(key) ?? [];
    await this.publish(new Map([[shardOf(id), held.filter((r) => r.id !== id)]]));
    await this.markSeen(held.filter((r) => r.id === id));
  }

  onRecordsLost(listener: () => void): void {
    this.lostListeners.push(listener);
  }

  /** Simulates an expired lease: this replica's shards vanish and the owner is told. */
  loseRecords(): void {
    for (const key of [...this.shards.keys()]) if (key.startsWith(`${this.replica}/`)) this.shards.delete(key);
    for (const l of this.lostListeners) l();
  }

  async close(): Promise<void> {
    await this.markSeen([...this.shards].filter(([key]) => key.startsWith(`${this.replica}/`)).flatMap(([, records]) => records));
    for (const key of [...this.shards.keys()]) if (key.startsWith(`${this.replica}/`)) this.shards.delete(key);
  }
}
