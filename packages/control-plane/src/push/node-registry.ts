/**
 * The DP streams this replica holds and their state (what each node runs, its last NACK), kept in
 * memory and published to the NodeStore in batches so that GET /v1/nodes on any replica lists
 * every node. No etcd write happens per ACK: a change marks the node's shard dirty, and every
 * `flushIntervalMs` the dirty shards are written, so a node is written at most once per flush
 * however fast it ACKs. Streams, pushes and this state never wait for etcd: when it is away the
 * flushes fail and are tried again, and nothing else notices.
 *
 * Last known records (kept after a node disconnects) are written when a node connects, when it
 * disconnects, and every `touchIntervalMs` for every held node, so a node whose replica dies is
 * shown last seen within that long of its death. Everything here can be rebuilt: a restarted
 * replica starts empty and its nodes reconnect.
 */
import type { Logger } from '@lb/shared';
import type { CpMetrics } from '../metrics.js';
import { shardOf, type NodeRecord, type NodeStore } from '../store/node-store.js';

export type PushKindName = 'config' | 'health';

export interface NodeIdentity {
  id: string;
  address: string;
  zone: string;
}

/** One connected node as the stream server sees it. */
export interface NodeHandle {
  readonly id: string;
  acked(kind: PushKindName, version: number): void;
  nacked(kind: PushKindName, version: number, error: string): void;
  /** The stream ended. Idempotent. */
  disconnect(): void;
}

export interface NodeRegistryOptions {
  store: NodeStore;
  /** This replica's id, recorded in every node record. */
  replica: string;
  logger: Logger;
  metrics?: CpMetrics;
  /** How often changed node state is written. Default 2000. */
  flushIntervalMs?: number;
  /** How often every held node's last known record is written again (its last-seen time). Default 60000. */
  touchIntervalMs?: number;
  now?: () => Date;
}

interface Entry {
  record: NodeRecord;
  /** Ends the stream; used when a newer stream for the same node id arrives. */
  close: (reason: string) => void;
}

export class NodeRegistry {
  private readonly entries = new Map<string, Entry>();
  private readonly dirty = new Set<number>();
  /** Last known records to write at the next flush, by node id (the newest wins). */
  private readonly toMarkSeen = new Map<string, NodeRecord>();
  private readonly flushTimer: NodeJS.Timeout;
  private readonly touchTimer: NodeJS.Timeout;
  private flushing: Promise<void> | undefined;
  private failures = 0;
  private closing = false;
  private readonly now: () => Date;

  constructor(private readonly options: NodeRegistryOptions) {
    this.now = options.now ?? (() => new Date());
    // The lease expired while we lived (etcd away longer than its TTL): publish every shard again.
    options.store.onRecordsLost(() => {
      for (const entry of this.entries.values()) this.dirty.add(shardOf(entry.record.id));
    });
    this.flushTimer = setInterval(() => void this.flush(), options.flushIntervalMs ?? 2_000);
    this.flushTimer.unref();
    this.touchTimer = setInterval(() => {
      for (const entry of this.entries.values()) this.toMarkSeen.set(entry.record.id, entry.record);
    }, options.touchIntervalMs ?? 60_000);
    this.touchTimer.unref();
  }

  /** Nodes held by this replica (not all nodes: those are in the store). */
  connected(): NodeRecord[] {
    return [...this.entries.values()].map((e) => structuredClone(e.record));
  }

  /** The config version each held node last ACKed (lb_cp_nodes{version}); no copies made. */
  *versions(): Iterable<number> {
    for (const entry of this.entries.values()) yield entry.record.configVersion;
  }

  connect(node: NodeIdentity, close: (reason: string) => void): NodeHandle {
    const previous = this.entries.get(node.id);
    const entry: Entry = {
      record: {
        id: node.id,
        address: node.address,
        zone: node.zone,
        connectedAt: this.now().toISOString(),
        configVersion: 0,
        healthRevision: 0,
        lastNack: null,
        replica: this.options.replica,
      },
      close,
    };
    this.entries.set(node.id, entry);
    if (previous) {
      this.options.logger.warn({ node: node.id }, 'a newer stream for this node id replaced the old one (two nodes with one id?)');
      previous.close('replaced by a newer stream for the same node id');
    }
    this.options.metrics?.connectedNodes.set(this.entries.size);
    this.changed(entry);
    this.toMarkSeen.set(node.id, entry.record);
    const isCurrent = (): boolean => this.entries.get(node.id) === entry;
    return {
      id: node.id,
      acked: (kind, version) => {
        if (!isCurrent()) return;
        if (kind === 'config') entry.record.configVersion = version;
        else entry.record.healthRevision = version;
        this.changed(entry);
      },
      nacked: (kind, version, error) => {
        if (!isCurrent()) return;
        // Health NACKs are not config NACKs; lastNack is what operators read about config.
        if (kind !== 'config') return;
        entry.record.lastNack = { version, error, at: this.now().toISOString() };
        this.changed(entry);
      },
      disconnect: () => {
        if (!isCurrent()) return;
        this.entries.delete(node.id);
        this.options.metrics?.connectedNodes.set(this.entries.size);
        this.dirty.add(shardOf(node.id));
        this.toMarkSeen.set(node.id, entry.record);
      },
    };
  }

  private changed(entry: Entry): void {
    this.dirty.add(shardOf(entry.record.id));
  }

  /** Writes what changed since the last flush; resolves when written (or failed: it is kept for the next). */
  flush(): Promise<void> {
    this.flushing ??= this.flushOnce().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async flushOnce(): Promise<void> {
    if (this.closing || (this.dirty.size === 0 && this.toMarkSeen.size === 0)) return;
    const shards = new Map<number, NodeRecord[]>();
    for (const shard of this.dirty) shards.set(shard, []);
    for (const entry of this.entries.values()) shards.get(shardOf(entry.record.id))?.push(structuredClone(entry.record));
    const seen = [...this.toMarkSeen.values()].map((r) => structuredClone(r));
    this.dirty.clear();
    this.toMarkSeen.clear();
    try {
      await this.options.store.publish(shards);
      await this.options.store.markSeen(seen);
      this.failures = 0;
    } catch (err) {
      // Kept for the next flush, unless something newer replaced it meanwhile.
      for (const shard of shards.keys()) this.dirty.add(shard);
      for (const record of seen) if (!this.toMarkSeen.has(record.id)) this.toMarkSeen.set(record.id, record);
      // One line when writing starts failing, not one per flush.
      if (this.failures++ === 0) this.options.logger.warn({ err: (err as Error).message }, 'cannot publish node state; retrying at every flush');
    }
  }

  /**
   * Stops writing to the store (shutdown): the streams are ended by the stream server and the
   * store's close() marks this replica's nodes seen and drops their records in one step.
   */
  stop(): void {
    this.closing = true;
    clearInterval(this.flushTimer);
    clearInterval(this.touchTimer);
    this.entries.clear();
    this.options.metrics?.connectedNodes.set(0);
  }
}
