/**
 * Where health lives: /lb/health/<pool>/<backend> → HealthRecord (JSON). Only the health-check
 * leader writes, and every write is fenced on its election key, so a replica that lost leadership
 * (and does not know yet) cannot overwrite the new leader's results. Every replica reads and
 * watches the prefix to push deltas to its data planes.
 *
 * Health is not config: nothing here touches /lb/config, and its revision is etcd's own.
 */
import type { Etcd3 } from 'etcd3';
import type { Logger } from '@lb/shared';
import { guarded } from '../store/etcd-client.js';
import type { HealthRecord } from './health-record.js';
import { EtcdKeys } from '../store/keys.js';

/** The leader's proof of leadership: its election key and that key's create revision. */
export interface LeaderFence {
  key: string;
  createRevision: string;
}

export type HealthEvent = { type: 'put'; record: HealthRecord; revision: number } | { type: 'delete'; pool: string; backend: string; revision: number };

export interface HealthWatch {
  /** Every change after `fromRevision`, in order. */
  onEvent(event: HealthEvent): void;
  /** The watch (re)connected: events may have been missed; the owner should re-list. */
  onReconnect(): void;
}

export interface HealthStore {
  /** Every record (of one pool if given) and the store revision they were read at. */
  list(pool?: string): Promise<{ revision: number; records: HealthRecord[] }>;
  /** Writes a record if `fence` still holds; false when it does not (leadership lost). */
  put(record: HealthRecord, fence: LeaderFence): Promise<boolean>;
  remove(pool: string, backend: string, fence: LeaderFence): Promise<boolean>;
  watch(fromRevision: number, watch: HealthWatch): () => void;
}

export class EtcdHealthStore implements HealthStore {
  private readonly prefix: string;

  constructor(
    private readonly client: Etcd3,
    prefix: string,
    private readonly logger: Logger,
    private readonly deadlineMs = 4_000,
  ) {
    this.prefix = new EtcdKeys(prefix).healthPrefix;
  }

  private key(pool: string, backend: string): string {
    return `${this.prefix}${pool}/${backend}`;
  }

  list(pool?: string): Promise<{ revision: number; records: HealthRecord[] }> {
    return guarded('listing health', this.deadlineMs, async () => {
      const res = await this.client
        .getAll()
        .prefix(pool === undefined ? this.prefix : `${this.prefix}${pool}/`)
        .exec();
      const records = res.kvs.flatMap((kv) => {
        try {
          return [JSON.parse(kv.value.toString()) as HealthRecord];
        } catch {
          return [];
        }
      });
      return { revision: Number(res.header.revision), records };
    });
  }

  put(record: HealthRecord, fence: LeaderFence): Promise<boolean> {
    return guarded(`writing health of ${record.pool}/${record.backend}`, this.deadlineMs, async () => {
      const result = await this.client
        .if(fence.key, 'Create', '==', fence.createRevision)
        .then(this.client.put(this.key(record.pool, record.backend)).value(JSON.stringify(record)))
        .commit();
      return result.succeeded;
    });
  }

  remove(pool: string, backend: string, fence: LeaderFence): Promise<boolean> {
    return guarded(`removing health of ${pool}/${backend}`, this.deadlineMs, async () => {
      const result = await this.client
        .if(fence.key, 'Create', '==', fence.createRevision)
        .then(this.client.delete().key(this.key(pool, backend)))
        .commit();
      return result.succeeded;
    });
  }

  watch(fromRevision: number, watch: HealthWatch): () => void {
    const watcher = this.client
      .watch()
      .prefix(this.prefix)
      .startRevision(String(fromRevision + 1))
      .watcher();
    let first = true;
    watcher.on('connected', () => {
      // The first connect is the one we asked for; later ones follow a disconnect.
      if (first) first = false;
      else watch.onReconnect();
    });
    watcher.on('put', (kv) => {
      try {
        watch.onEvent({ type: 'put', record: JSON.parse(kv.value.toString()) as HealthRecord, revision: Number(kv.mod_revision) });
      } catch (err) {
        this.logger.warn({ key: kv.key.toString(), err: (err as Error).message }, 'ignoring an unreadable health record');
      }
    });
    watcher.on('delete', (kv) => {
      const [pool, backend] = kv.key.toString().slice(this.prefix.length).split('/');
      if (pool !== undefined && backend !== undefined) watch.onEvent({ type: 'delete', pool, backend, revision: Number(kv.mod_revision) });
    });
    watcher.on('disconnected', (err) => this.logger.warn({ err: err.message }, 'health watch disconnected; reconnecting'));
    watcher.on('error', (err) => this.logger.warn({ err: err.message }, 'health watch error'));
    return () => void watcher.cancel().catch(() => undefined);
  }
}

/** For unit tests: the same contract in memory; `fenceOk` decides whether fenced writes pass. */
export class MemoryHealthStore implements HealthStore {
  revision = 1;
  fenceOk = true;
  readonly records = new Map<string, HealthRecord>();
  private readonly watches = new Set<HealthWatch>();

  async list(pool?: string): Promise<{ revision: number; records: HealthRecord[] }> {
    const records = [...this.records.values()].filter((r) => pool === undefined || r.pool === pool).map((r) => structuredClone(r));
    return { revision: this.revision, records };
  }

  // The fence is not checked here: tests flip `fenceOk` to play a deposed leader.
  async put(record: HealthRecord, _fence?: LeaderFence): Promise<boolean> {
    if (!this.fenceOk) return false;
    this.revision++;
    this.records.set(`${record.pool}/${record.backend}`, structuredClone(record));
    for (const w of this.watches) w.onEvent({ type: 'put', record: structuredClone(record), revision: this.revision });
    return true;
  }

  async remove(pool: string, backend: string, _fence?: LeaderFence): Promise<boolean> {
    if (!this.fenceOk) return false;
    if (!this.records.delete(`${pool}/${backend}`)) return true;
    this.revision++;
    for (const w of this.watches) w.onEvent({ type: 'delete', pool, backend, revision: this.revision });
    return true;
  }

  watch(_fromRevision: number, watch: HealthWatch): () => void {
    this.watches.add(watch);
    return () => this.watches.delete(watch);
  }
}
