/**
 * Where rollouts live (README, etcd layout): one record per rollout, the id of the active one,
 * and each replica's traffic summary while one runs. Every change of a record is a transaction
 * guarded by the record's revision, so two replicas (the driving leader, an operator's pause on
 * another) never overwrite each other; creating one also compares the config pointer, so a
 * rollout never starts from a baseline that is no longer current.
 */
import type { Etcd3 } from 'etcd3';
import type { Logger } from '@lb/shared';
import type { ConfigPointer } from '../store/config-store.js';
import { guarded } from '../store/etcd-client.js';
import { EtcdKeys } from '../store/keys.js';
import { pointerText } from '../store/version-manifest.js';
import type { RolloutRecord } from './rollout-model.js';

/** A record with the revision a guarded update compares. */
export interface Revised {
  record: RolloutRecord;
  revision: string;
}

/** Traffic of one group of nodes, added up (routes' requests, errors and latency buckets). */
export interface GroupTraffic {
  requests: number;
  errors: number;
  latencyCounts: number[];
  latencyBoundsMs: number[];
}

/** One replica's summary of the nodes it holds, during a rollout. */
export interface ReplicaTraffic {
  replica: string;
  /** ms since the epoch. */
  at: number;
  canary: GroupTraffic;
  baseline: GroupTraffic;
}

export type CreateResult = 'created' | 'active' | 'moved';

export interface RolloutStore {
  /** Stores `record` as the active rollout if none is and the pointer still says `seen`. */
  create(record: RolloutRecord, seen: ConfigPointer): Promise<CreateResult>;
  get(id: string): Promise<Revised | undefined>;
  /** The rollout that decides what nodes run (running, paused, or aborted and not yet rolled back). */
  active(): Promise<Revised | undefined>;
  /** The newest `limit` rollouts, newest first. */
  list(limit: number): Promise<RolloutRecord[]>;
  /** Replaces the record if its revision is still `revision`; a finished one stops being active in the same step. */
  update(next: RolloutRecord, revision: string): Promise<boolean>;
  publishTraffic(id: string, traffic: ReplicaTraffic): Promise<void>;
  traffic(id: string): Promise<ReplicaTraffic[]>;
  /** `onChange` after any change of the rollouts (and periodically). Returns a stop function. */
  watch(onChange: () => void): () => void;
}

/** Done, or aborted with every node taken back: the record no longer decides anything. */
export function isFinished(record: RolloutRecord): boolean {
  return record.state === 'done' || (record.state === 'aborted' && record.rollbackVersion !== null);
}

export class EtcdRolloutStore implements RolloutStore {
  private readonly keys: EtcdKeys;
  private readonly deadlineMs = 4_000;

  constructor(
    private readonly client: Etcd3,
    prefix: string,
    private readonly logger: Logger,
  ) {
    this.keys = new EtcdKeys(prefix);
  }

  create(record: RolloutRecord, seen: ConfigPointer): Promise<CreateResult> {
    return guarded('starting a rollout', this.deadlineMs, async () => {
      const result = await this.client
        .if(this.keys.activeRollout, 'Create', '==', 0)
        .and(this.keys.current, 'Value', '==', pointerText(seen))
        .then(this.client.put(this.keys.activeRollout).value(record.id), this.client.put(this.keys.rolloutsPrefix + record.id).value(JSON.stringify(record)))
        .commit();
      if (result.succeeded) return 'created';
      return (await this.client.get(this.keys.activeRollout).string()) !== null ? 'active' : 'moved';
    });
  }

  get(id: string): Promise<Revised | undefined> {
    return guarded(`reading rollout ${id}`, this.deadlineMs, async () => {
      const res = await this.client.get(this.keys.rolloutsPrefix + id).exec();
      const kv = res.kvs[0];
      return kv === undefined ? undefined : { record: JSON.parse(kv.value.toString()) as RolloutRecord, revision: String(kv.mod_revision) };
    });
  }

  async active(): Promise<Revised | undefined> {
    const id = await guarded('reading the active rollout', this.deadlineMs, () => this.client.get(this.keys.activeRollout).string());
    return id === null ? undefined : this.get(id);
  }

  list(limit: number): Promise<RolloutRecord[]> {
    return guarded('listing rollouts', this.deadlineMs, async () => {
      const values = await this.client.getAll().prefix(this.keys.rolloutsPrefix).strings();
      return Object.values(values)
        .map((v) => JSON.parse(v) as RolloutRecord)
        .sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id))
        .slice(0, limit);
    });
  }

  update(next: RolloutRecord, revision: string): Promise<boolean> {
    return guarded(`updating rollout ${next.id}`, this.deadlineMs, async () => {
      const key = this.keys.rolloutsPrefix + next.id;
      const ops = [this.client.put(key).value(JSON.stringify(next))];
      const finished = isFinished(next);
      const txn = this.client.if(key, 'Mod', '==', revision);
      const result = await (finished ? txn.and(this.keys.activeRollout, 'Value', '==', next.id) : txn)
        .then(...ops, ...(finished ? [this.client.delete().key(this.keys.activeRollout)] : []))
        .commit();
      if (result.succeeded && finished) {
        // Its traffic summaries are of no use any more.
        await this.client
          .delete()
          .prefix(`${this.keys.rolloutTrafficPrefix}${next.id}/`)
          .exec()
          .catch(() => undefined);
      }
      return result.succeeded;
    });
  }

  publishTraffic(id: string, traffic: ReplicaTraffic): Promise<void> {
    return guarded('publishing rollout traffic', this.deadlineMs, async () => {
      await this.client.put(`${this.keys.rolloutTrafficPrefix}${id}/${traffic.replica}`).value(JSON.stringify(traffic)).exec();
    });
  }

  traffic(id: string): Promise<ReplicaTraffic[]> {
    return guarded('reading rollout traffic', this.deadlineMs, async () => {
      const values = await this.client.getAll().prefix(`${this.keys.rolloutTrafficPrefix}${id}/`).strings();
      return Object.values(values).map((v) => JSON.parse(v) as ReplicaTraffic);
    });
  }

  watch(onChange: () => void): () => void {
    const watcher = this.client.watch().prefix(this.keys.rolloutsPrefix).watcher();
    watcher.on('connected', () => onChange());
    watcher.on('put', () => onChange());
    watcher.on('error', (err) => this.logger.warn({ err: err.message }, 'etcd watch of rollouts failed'));
    // A missed event heals at the next re-read.
    const resync = setInterval(onChange, 5_000);
    resync.unref();
    return () => {
      clearInterval(resync);
      watcher.cancel().catch(() => undefined);
    };
  }
}

/** For unit tests of the API: the same contract in memory. */
export class MemoryRolloutStore implements RolloutStore {
  private readonly records = new Map<string, Revised>();
  private activeId: string | undefined;
  private revision = 0;
  private readonly traffics = new Map<string, Map<string, ReplicaTraffic>>();
  private readonly watchers = new Set<() => void>();

  constructor(private readonly pointer: () => Promise<ConfigPointer> = async () => ({ version: 0, historyId: '' })) {}

  async create(record: RolloutRecord, seen: ConfigPointer): Promise<CreateResult> {
    if (this.activeId !== undefined) return 'active';
    if (pointerText(await this.pointer()) !== pointerText(seen)) return 'moved';
    this.activeId = record.id;
    this.put(record);
    return 'created';
  }

  async get(id: string): Promise<Revised | undefined> {
    const held = this.records.get(id);
    return held && structuredClone(held);
  }

  async active(): Promise<Revised | undefined> {
    return this.activeId === undefined ? undefined : this.get(this.activeId);
  }

  async list(limit: number): Promise<RolloutRecord[]> {
    return [...this.records.values()]
      .map((r) => structuredClone(r.record))
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt))
      .slice(0, limit);
  }

  async update(next: RolloutRecord, revision: string): Promise<boolean> {
    if (this.records.get(next.id)?.revision !== revision) return false;
    this.put(next);
    if (isFinished(next) && this.activeId === next.id) this.activeId = undefined;
    return true;
  }

  async publishTraffic(id: string, traffic: ReplicaTraffic): Promise<void> {
    let of = this.traffics.get(id);
    if (of === undefined) {
      of = new Map();
      this.traffics.set(id, of);
    }
    of.set(traffic.replica, structuredClone(traffic));
  }

  async traffic(id: string): Promise<ReplicaTraffic[]> {
    return [...(this.traffics.get(id)?.values() ?? [])];
  }

  watch(onChange: () => void): () => void {
    this.watchers.add(onChange);
    queueMicrotask(onChange);
    return () => this.watchers.delete(onChange);
  }

  private put(record: RolloutRecord): void {
    this.records.set(record.id, { record: structuredClone(record), revision: String(++this.revision) });
    for (const w of this.watchers) queueMicrotask(w);
  }
}
