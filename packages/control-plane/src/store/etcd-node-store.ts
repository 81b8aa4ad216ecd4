/**
 * NodeStore on etcd. Connected nodes: `/lb/nodes/<replica>/<shard>` holds the records of the
 * replica's nodes whose id falls in that shard (node-store.ts), bound to the replica's lease, so
 * the nodes of a replica that dies vanish after the TTL and no value grows with the fleet. Every
 * node also has a last known record, `/lb/seen-nodes/<id>` (no lease), so a node that lost its
 * control plane (and still serves from its cache) stays listed as disconnected, with the version
 * it last acked, until an operator or the retention forgets it.
 *
 * Every replica keeps a copy of both prefixes, listed once and then kept current by a watch (and
 * listed again on a reconnect and every `resyncIntervalMs`): GET /v1/nodes reads that copy.
 */
import type { Etcd3, Lease, Watcher } from 'etcd3';
import type { Logger } from '@lb/shared';
import { writeInBatches } from './etcd-batch.js';
import { guarded } from './etcd-client.js';
import { EtcdKeys } from './keys.js';
import { nodeViews, type ForgetResult, type NodeRecord, type NodeStore, type NodeView, type SeenRecord } from './node-store.js';

export interface EtcdNodeStoreOptions {
  client: Etcd3;
  prefix: string;
  /** This replica's id: its shards are `nodes/<replica>/…`. */
  replica: string;
  logger: Logger;
  /** Lease TTL: how long a dead replica's nodes stay listed as connected. */
  ttlSeconds?: number;
  deadlineMs?: number;
  /** Full re-list of the watched copy, whatever the watch says. Default 30000. */
  resyncIntervalMs?: number;
  now?: () => Date;
}

/** A watched key's value and the revision it was written at (to tell a list from a later event). */
interface Held<T> {
  value: T;
  text: string;
  mod: number;
}

/**
 * One prefix of etcd kept in memory: listed, then followed by a watch. A list may be read before
 * an event that is applied before it (a re-list racing the watch): revisions decide, and deletes
 * are remembered until a list at least as new has seen them, so a stale list never brings back
 * what was deleted.
 */
class WatchedPrefix<T> {
  readonly entries = new Map<string, Held<T>>();
  private readonly deleted = new Map<string, number>();

  constructor(
    readonly prefix: string,
    private readonly parse: (text: string) => T,
  ) {}

  /** Takes a listing made at `revision`. */
  list(kvs: Array<{ key: Buffer; value: Buffer; mod_revision: string }>, revision: number): void {
    const listed = new Set<string>();
    for (const kv of kvs) {
      const key = kv.key.toString();
      listed.add(key);
      this.put(key, kv.value.toString(), Number(kv.mod_revision));
    }
    for (const [key, held] of this.entries) if (!listed.has(key) && held.mod <= revision) this.entries.delete(key);
    for (const [key, at] of this.deleted) if (at <= revision) this.deleted.delete(key);
  }

  put(key: string, text: string, mod: number): void {
    const held = this.entries.get(key);
    if ((held !== undefined && held.mod > mod) || (this.deleted.get(key) ?? 0) > mod) return;
    this.entries.set(key, { value: this.parse(text), text, mod });
  }

  delete(key: string, at: number): void {
    const held = this.entries.get(key);
    if (held !== undefined && held.mod > at) return;
    this.entries.delete(key);
    this.deleted.set(key, Math.max(at, this.deleted.get(key) ?? 0));
  }
}

export class EtcdNodeStore implements NodeStore {
  private readonly client: Etcd3;
  private readonly keys: EtcdKeys;
  private readonly logger: Logger;
  private readonly ttlSeconds: number;
  private readonly deadlineMs: number;
  private readonly now: () => Date;
  private readonly lostListeners: Array<() => void> = [];
  /** Granted lazily on the first publish, and again after it is lost. */
  private lease: Lease | undefined;
  /** What this replica published last, per shard: marked seen when it shuts down. */
  private readonly own = new Map<number, readonly NodeRecord[]>();
  private readonly live: WatchedPrefix<NodeRecord[]>;
  private readonly seen: WatchedPrefix<SeenRecord>;
  private readonly watchers: Watcher[] = [];
  private listing: Promise<void> | undefined;
  private listed = false;
  private stopped = false;
  private readonly resync: NodeJS.Timeout;

  constructor(private readonly options: EtcdNodeStoreOptions) {
    this.client = options.client;
    this.keys = new EtcdKeys(options.prefix);
    this.logger = options.logger;
    this.ttlSeconds = options.ttlSeconds ?? 10;
    this.deadlineMs = options.deadlineMs ?? 4_000;
    this.now = options.now ?? (() => new Date());
    this.live = new WatchedPrefix(this.keys.nodesPrefix, (text) => JSON.parse(text) as NodeRecord[]);
    this.seen = new WatchedPrefix(this.keys.seenNodesPrefix, (text) => JSON.parse(text) as SeenRecord);
    this.resync = setInterval(() => void this.relist().catch(() => undefined), options.resyncIntervalMs ?? 30_000);
    this.resync.unref();
  }

  private currentLease(): Lease {
    if (this.lease) return this.lease;
    const lease = this.client.lease(this.ttlSeconds);
    lease.on('lost', (err) => {
      if (this.lease !== lease) return;
      this.lease = undefined;
      this.logger.warn({ err: err.message }, 'etcd lease of the node records lost; they will be published again');
      for (const listener of this.lostListeners) listener();
    });
    this.lease = lease;
    return lease;
  }

  /** The first list (and the watches after it); later calls wait for the same one. */
  private ready(): Promise<void> {
    if (this.listed) return Promise.resolve();
    this.listing ??= this.relist().finally(() => {
      this.listing = undefined;
    });
    return guarded('listing nodes', this.deadlineMs, () => this.listing!);
  }

  private async relist(): Promise<void> {
    const liveRange = await this.client.getAll().prefix(this.keys.nodesPrefix).exec();
    // Both at one revision, so a node moving between them is in exactly one.
    const revision = Number(liveRange.header.revision);
    const seenRange = await this.client.getAll().prefix(this.keys.seenNodesPrefix).revision(revision).exec();
    this.live.list(liveRange.kvs, revision);
    this.seen.list(seenRange.kvs, revision);
    if (!this.listed && !this.stopped) {
      this.listed = true;
      for (const watched of [this.live, this.seen] as WatchedPrefix<unknown>[]) this.watch(watched, revision + 1);
    }
  }

  private watch(watched: WatchedPrefix<unknown>, from: number): void {
    const watcher = this.client.watch().prefix(watched.prefix).startRevision(String(from)).watcher();
    // A delete event's key carries no revision of its own: the response header's is the delete's.
    watcher.on('data', (res: { header: { revision: string }; events: Array<{ type: string; kv: { key: Buffer; value: Buffer; mod_revision: string } }> }) => {
      for (const event of res.events) {
        const key = event.kv.key.toString();
        if (event.type === 'Put') watched.put(key, event.kv.value.toString(), Number(event.kv.mod_revision));
        else watched.delete(key, Number(res.header.revision));
      }
    });
    // Events may have been missed while disconnected (or compacted away): list again.
    watcher.on('connected', () => void this.relist().catch(() => undefined));
    watcher.on('error', (err) => this.logger.warn({ err: err.message }, 'etcd watch of the nodes failed'));
    this.watchers.push(watcher);
  }

  publish(shards: ReadonlyMap<number, readonly NodeRecord[]>): Promise<void> {
    return guarded(`publishing ${shards.size} node shards`, this.deadlineMs, async () => {
      const lease = String(await this.currentLease().grant());
      const writes = [...shards].map(([shard, records]) => ({
        key: this.keys.nodeShard(this.options.replica, shard),
        ...(records.length > 0 ? { value: JSON.stringify(records), lease } : {}),
      }));
      const revisions = await writeInBatches(this.client, writes);
      // This replica's own writes go into its copy at once, not when the watch brings them back.
      for (const w of writes) {
        const revision = revisions.get(w.key)!;
        if (w.value === undefined) this.live.delete(w.key, revision);
        else this.live.put(w.key, w.value, revision);
      }
      for (const [shard, records] of shards) {
        if (records.length === 0) this.own.delete(shard);
        else this.own.set(shard, records);
      }
    });
  }

  markSeen(records: readonly NodeRecord[]): Promise<void> {
    return guarded(`recording ${records.length} nodes as seen`, this.deadlineMs, async () => {
      const at = this.now().toISOString();
      const later = this.laterStreams();
      const writes = records
        .filter((r) => (later.get(r.id) ?? '') <= r.connectedAt)
        .map((record) => ({ key: this.keys.seenNode(record.id), value: JSON.stringify({ ...record, lastSeenAt: at } satisfies SeenRecord) }));
      const revisions = await writeInBatches(this.client, writes);
      for (const w of writes) this.seen.put(w.key, w.value, revisions.get(w.key)!);
    });
  }

  /** The latest stream start the copy knows per node id, from any replica's records or last known ones. */
  private laterStreams(): Map<string, string> {
    const latest = new Map<string, string>();
    const note = (record: NodeRecord) => {
      if ((latest.get(record.id) ?? '') < record.connectedAt) latest.set(record.id, record.connectedAt);
    };
    for (const held of this.live.entries.values()) for (const record of held.value) note(record);
    for (const held of this.seen.entries.values()) note(held.value);
    return latest;
  }

  private connectedIds(): Set<string> {
    const ids = new Set<string>();
    for (const held of this.live.entries.values()) for (const record of held.value) ids.add(record.id);
    return ids;
  }

  async known(held: readonly NodeRecord[] = []): Promise<NodeView[]> {
    await this.ready();
    return nodeViews(
      [...held, ...[...this.live.entries.values()].flatMap((entry) => entry.value)],
      [...this.seen.entries.values()].map((entry) => entry.value),
    );
  }

  async forget(id: string): Promise<ForgetResult> {
    await this.ready();
    if (this.connectedIds().has(id)) return 'connected';
    return guarded(`forgetting node ${id}`, this.deadlineMs, async () => {
      const deleted = await this.client.delete().key(this.keys.seenNode(id)).exec();
      this.seen.delete(this.keys.seenNode(id), Number(deleted.header.revision));
      return Number(deleted.deleted) > 0 ? 'forgotten' : 'unknown';
    });
  }

  async forgetDisconnected(before: Date): Promise<string[]> {
    await this.ready();
    const connected = this.connectedIds();
    const old = [...this.seen.entries].filter(([, held]) => !connected.has(held.value.id) && Date.parse(held.value.lastSeenAt) < before.getTime());
    return guarded('forgetting disconnected nodes', this.deadlineMs, async () => {
      const forgotten: string[] = [];
      for (const [key, held] of old) {
        // Only if nobody marked it seen since.
        const result = await this.client.if(key, 'Value', '==', held.text).then(this.client.delete().key(key)).commit();
        if (!result.succeeded) continue;
        this.seen.delete(key, Number(result.header.revision));
        forgotten.push(held.value.id);
      }
      return forgotten;
    });
  }

  onRecordsLost(listener: () => void): void {
    this.lostListeners.push(listener);
  }

  async close(): Promise<void> {
    this.stopped = true;
    clearInterval(this.resync);
    for (const watcher of this.watchers.splice(0)) await watcher.cancel().catch(() => undefined);
    const lease = this.lease;
    this.lease = undefined;
    if (!lease) return;
    try {
      // Mark every node held here as seen now (their streams end with this replica), then revoke:
      // revoking deletes every shard on the lease at once; if etcd is gone they expire with the TTL.
      await this.markSeen([...this.own.values()].flat());
      await guarded('revoking the node lease', this.deadlineMs, () => lease.revoke());
      for (const shard of this.own.keys()) this.live.entries.delete(this.keys.nodeShard(this.options.replica, shard));
      this.own.clear();
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'could not revoke the node lease; node records expire with its TTL');
      lease.release();
    }
  }
}
