/**
 * NodeStore on etcd: /lb/nodes/<id> keys bound to one lease per replica, so the records of a
 * replica that dies vanish after the TTL and GET /v1/nodes on any replica shows only live streams.
 */
import type { Etcd3, Lease } from 'etcd3';
import type { Logger } from '@lb/shared';
import type { NodePutOptions, NodeRecord, NodeStore } from './config-store.js';
import { guarded } from './etcd-client.js';
import { EtcdKeys } from './keys.js';

export interface EtcdNodeStoreOptions {
  client: Etcd3;
  prefix: string;
  logger: Logger;
  /** Lease TTL: how long a dead replica's nodes stay listed. */
  ttlSeconds?: number;
  deadlineMs?: number;
}

export class EtcdNodeStore implements NodeStore {
  private readonly client: Etcd3;
  private readonly keys: EtcdKeys;
  private readonly logger: Logger;
  private readonly ttlSeconds: number;
  private readonly deadlineMs: number;
  private readonly lostListeners: Array<() => void> = [];
  /** Granted lazily on the first put, and again after it is lost. */
  private lease: Lease | undefined;

  constructor(options: EtcdNodeStoreOptions) {
    this.client = options.client;
    this.keys = new EtcdKeys(options.prefix);
    this.logger = options.logger;
    this.ttlSeconds = options.ttlSeconds ?? 10;
    this.deadlineMs = options.deadlineMs ?? 4_000;
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

  put(record: NodeRecord, options: NodePutOptions = {}): Promise<boolean> {
    return guarded(`publishing node ${record.id}`, this.deadlineMs, async () => {
      const lease = this.currentLease();
      const key = this.keys.node(record.id);
      const value = JSON.stringify(record);
      const leaseId = await lease.grant();
      const write = () => this.client.put(key).value(value).lease(leaseId);
      if (options.claim) return this.claim(key, record, leaseId, write);
      // Ours (on this lease) or nobody's (expired with a lost lease): write. A key on another
      // lease belongs to the replica that took the node over; leave it. A missing key compares
      // as Lease 0 and Version 0, and etcd has no OR, hence two transactions.
      const own = await this.client.if(key, 'Lease', '==', leaseId).then(write()).commit();
      if (own.succeeded) return true;
      const free = await this.client.if(key, 'Version', '==', 0).then(write()).commit();
      return free.succeeded;
    });
  }

  /**
   * Takes the record over unless a stream that opened later holds it (NodePutOptions.claim):
   * read, compare `connectedAt`, write only if the key has not changed since the read.
   */
  private async claim(key: string, record: NodeRecord, leaseId: string, write: () => ReturnType<Etcd3['put']>): Promise<boolean> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const found = (await this.client.get(key).exec()).kvs[0];
      if (found !== undefined && found.lease !== leaseId) {
        const held = JSON.parse(found.value.toString()) as NodeRecord;
        if (held.connectedAt > record.connectedAt) return false;
      }
      const unchanged = found === undefined ? this.client.if(key, 'Version', '==', 0) : this.client.if(key, 'Mod', '==', found.mod_revision);
      if ((await unchanged.then(write()).commit()).succeeded) return true;
    }
    // The record kept changing under us: other replicas are claiming it too; theirs stands.
    return false;
  }

  remove(id: string): Promise<void> {
    const lease = this.lease;
    // Without a lease this replica wrote nothing that is still alive.
    if (!lease) return Promise.resolve();
    return guarded(`removing node ${id}`, this.deadlineMs, async () => {
      const leaseId = await lease.grant();
      const key = this.keys.node(id);
      // Another replica that took the node over wrote the key under its own lease: leave it.
      await this.client.if(key, 'Lease', '==', leaseId).then(this.client.delete().key(key)).commit();
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

  onRecordsLost(listener: () => void): void {
    this.lostListeners.push(listener);
  }

  async close(): Promise<void> {
    const lease = this.lease;
    this.lease = undefined;
    if (!lease) return;
    try {
      // Revoking deletes every key on the lease at once; if etcd is gone they expire with the TTL.
      await guarded('revoking the node lease', this.deadlineMs, () => lease.revoke());
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'could not revoke the node lease; node records expire with its TTL');
      lease.release();
    }
  }
}
