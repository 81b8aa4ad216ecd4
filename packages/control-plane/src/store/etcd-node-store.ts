/**
 * NodeStore on etcd. Connected nodes: /lb/nodes/<id> keys bound to one lease per replica, so the
 * records of a replica that dies vanish after the TTL. Every node also has a last known record,
 * /lb/seen-nodes/<id> (no lease), written with each record and when its stream ends, so a node
 * that lost its control plane (and still serves from its cache) stays listed as disconnected,
 * with the version it last acked, until an operator or the retention forgets it.
 */
import type { Etcd3, Lease } from 'etcd3';
import type { Logger } from '@lb/shared';
import type { ForgetResult, NodePutOptions, NodeRecord, NodeStore, NodeView } from './config-store.js';
import { guarded } from './etcd-client.js';
import { EtcdKeys } from './keys.js';

export interface EtcdNodeStoreOptions {
  client: Etcd3;
  prefix: string;
  logger: Logger;
  /** Lease TTL: how long a dead replica's nodes stay listed as connected. */
  ttlSeconds?: number;
  deadlineMs?: number;
  now?: () => Date;
}

/** The last known record: the node as it was, and when it was last seen. */
interface SeenRecord extends NodeRecord {
  lastSeenAt: string;
}

export class EtcdNodeStore implements NodeStore {
  private readonly client: Etcd3;
  private readonly keys: EtcdKeys;
  private readonly logger: Logger;
  private readonly ttlSeconds: number;
  private readonly deadlineMs: number;
  private readonly now: () => Date;
  private readonly lostListeners: Array<() => void> = [];
  /** Granted lazily on the first put, and again after it is lost. */
  private lease: Lease | undefined;
  /** The records this replica wrote last and still owns, to mark them seen when it shuts down. */
  private readonly owned = new Map<string, NodeRecord>();

  constructor(options: EtcdNodeStoreOptions) {
    this.client = options.client;
    this.keys = new EtcdKeys(options.prefix);
    this.logger = options.logger;
    this.ttlSeconds = options.ttlSeconds ?? 10;
    this.deadlineMs = options.deadlineMs ?? 4_000;
    this.now = options.now ?? (() => new Date());
  }

  private currentLease(): Lease {
    if (this.lease) return this.lease;
    const lease = this.client.lease(this.ttlSeconds);
    lease.on('lost', (err) => {
      if (this.lease !== lease) return;
      this.lease = undefined;
      this.logger.warn({ err: err.message }, 'etcd lease of the node records lost; they will be written again');
      for (const listener of this.lostListeners) listener();
    });
    this.lease = lease;
    return lease;
  }

  private seen(record: NodeRecord): string {
    const seen: SeenRecord = { ...record, lastSeenAt: this.now().toISOString() };
    return JSON.stringify(seen);
  }

  put(record: NodeRecord, options: NodePutOptions = {}): Promise<boolean> {
    return guarded(`publishing node ${record.id}`, this.deadlineMs, async () => {
      const lease = this.currentLease();
      const key = this.keys.node(record.id);
      const value = JSON.stringify(record);
      const leaseId = await lease.grant();
      // The last known record goes in the same transaction: it never says more than the live one did.
      const write = () => [this.client.put(key).value(value).lease(leaseId), this.client.put(this.keys.seenNode(record.id)).value(this.seen(record))];
      const written = options.claim ? await this.claim(key, record, leaseId, write) : await this.update(key, leaseId, write);
      if (written) this.owned.set(record.id, record);
      else this.owned.delete(record.id);
      return written;
    });
  }

  /**
   * Ours (on this lease) or nobody's (expired with a lost lease): write. A key on another lease
   * belongs to the replica that took the node over; leave it. A missing key compares as Lease 0
   * and Version 0, and etcd has no OR, hence two transactions.
   */
  private async update(key: string, leaseId: string, write: () => ReturnType<Etcd3['put']>[]): Promise<boolean> {
    const own = await this.client
      .if(key, 'Lease', '==', leaseId)
      .then(...write())
      .commit();
    if (own.succeeded) return true;
    const free = await this.client
      .if(key, 'Version', '==', 0)
      .then(...write())
      .commit();
    return free.succeeded;
  }

  /**
   * Takes the record over unless a stream that opened later holds it (NodePutOptions.claim):
   * read, compare `connectedAt`, write only if the key has not changed since the read.
   */
  private async claim(key: string, record: NodeRecord, leaseId: string, write: () => ReturnType<Etcd3['put']>[]): Promise<boolean> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const found = (await this.client.get(key).exec()).kvs[0];
      if (found !== undefined && found.lease !== leaseId) {
        const held = JSON.parse(found.value.toString()) as NodeRecord;
        if (held.connectedAt > record.connectedAt) return false;
      }
      const unchanged = found === undefined ? this.client.if(key, 'Version', '==', 0) : this.client.if(key, 'Mod', '==', found.mod_revision);
      if ((await unchanged.then(...write()).commit()).succeeded) return true;
    }
    // The record kept changing under us: other replicas are claiming it too; theirs stands.
    return false;
  }

  remove(id: string): Promise<void> {
    const lease = this.lease;
    const last = this.owned.get(id);
    this.owned.delete(id);
    // Without a lease this replica wrote nothing that is still alive.
    if (!lease) return Promise.resolve();
    return guarded(`removing node ${id}`, this.deadlineMs, async () => {
      const leaseId = await lease.grant();
      const key = this.keys.node(id);
      // Another replica that took the node over wrote the key under its own lease: leave it, and its last known record.
      const ops = [this.client.delete().key(key), ...(last ? [this.client.put(this.keys.seenNode(id)).value(this.seen(last))] : [])];
      await this.client
        .if(key, 'Lease', '==', leaseId)
        .then(...ops)
        .commit();
    });
  }

  list(): Promise<NodeRecord[]> {
    return guarded('listing nodes', this.deadlineMs, async () => {
      const values = await this.client.getAll().prefix(this.keys.nodesPrefix).strings();
      return Object.values(values)
        .map((v) => JSON.parse(v) as NodeRecord)
        .sort((a, b) => a.id.localeCompare(b.id));
    });
  }

  known(): Promise<NodeView[]> {
    return guarded('listing known nodes', this.deadlineMs, async () => {
      // Both lists at one revision, so a node moving between them is in exactly one.
      const liveRange = await this.client.getAll().prefix(this.keys.nodesPrefix).exec();
      const seenRange = await this.client.getAll().prefix(this.keys.seenNodesPrefix).revision(liveRange.header.revision).exec();
      const parse = (kvs: Array<{ value: Buffer }>) => kvs.map((kv) => JSON.parse(kv.value.toString()) as NodeRecord);
      const [live, seen] = [parse(liveRange.kvs), parse(seenRange.kvs)];
      const views = new Map<string, NodeView>();
      for (const record of seen) {
        const { lastSeenAt, ...rest } = record as SeenRecord;
        views.set(record.id, { ...rest, status: 'disconnected', lastSeenAt });
      }
      for (const record of live) views.set(record.id, { ...record, status: 'connected', lastSeenAt: null });
      return [...views.values()].sort((a, b) => a.id.localeCompare(b.id));
    });
  }

  forget(id: string): Promise<ForgetResult> {
    return guarded(`forgetting node ${id}`, this.deadlineMs, async () => {
      const live = this.keys.node(id);
      const seen = this.keys.seenNode(id);
      const result = await this.client.if(live, 'Version', '==', 0).then(this.client.delete().key(seen)).commit();
      if (!result.succeeded) return 'connected';
      return Number(result.responses[0]?.response_delete_range?.deleted ?? 0) > 0 ? 'forgotten' : 'unknown';
    });
  }

  forgetDisconnected(before: Date): Promise<string[]> {
    return guarded('forgetting disconnected nodes', this.deadlineMs, async () => {
      const values = await this.client.getAll().prefix(this.keys.seenNodesPrefix).strings();
      const forgotten: string[] = [];
      for (const value of Object.values(values)) {
        const record = JSON.parse(value) as SeenRecord;
        if (Date.parse(record.lastSeenAt) >= before.getTime()) continue;
        // Only if it is still disconnected and nobody marked it seen since.
        const live = this.keys.node(record.id);
        const seen = this.keys.seenNode(record.id);
        const result = await this.client.if(live, 'Version', '==', 0).and(seen, 'Value', '==', value).then(this.client.delete().key(seen)).commit();
        if (result.succeeded) forgotten.push(record.id);
      }
      return forgotten;
    });
  }

  onRecordsLost(listener: () => void): void {
    this.lostListeners.push(listener);
  }

  async close(): Promise<void> {
    const lease = this.lease;
    this.lease = undefined;
    if (!lease) return;
    try {
      // Mark every node held here as seen now (their streams end with this replica), then revoke:
      // revoking deletes every live key on the lease at once; if etcd is gone they expire with the TTL.
      await guarded('revoking the node lease', this.deadlineMs, async () => {
        const leaseId = await lease.grant();
        for (const [id, record] of this.owned) {
          await this.client
            .if(this.keys.node(id), 'Lease', '==', leaseId)
            .then(this.client.put(this.keys.seenNode(id)).value(this.seen(record)))
            .commit();
        }
        this.owned.clear();
        await lease.revoke();
      });
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'could not revoke the node lease; node records expire with its TTL');
      lease.release();
    }
  }
}
