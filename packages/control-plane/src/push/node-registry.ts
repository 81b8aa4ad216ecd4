/**
 * The DP streams this replica holds, and their publication to the NodeStore (etcd) so that
 * GET /v1/nodes on any replica lists every node. Writes for one node id are strictly one at a time
 * and always write the latest state, so a late write can never resurrect a node that left.
 */
import type { Logger } from '@lb/shared';
import type { CpMetrics } from '../metrics.js';
import type { NodeRecord, NodeStore } from '../store/config-store.js';

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
  /** Delay before writing again after the store failed. */
  retryDelayMs?: number;
  /**
   * How often every held node's record is written again even when nothing changed, which moves
   * its last-seen time: a node whose replica dies is then shown last seen within this long of it.
   */
  touchIntervalMs?: number;
  now?: () => Date;
}

interface Entry {
  record: NodeRecord;
  /** The record was written once for this stream; later writes no longer take it over. */
  claimed: boolean;
  /** Ends the stream; used when a newer stream for the same id arrives. */
  close: (reason: string) => void;
}

interface SyncState {
  running: boolean;
  again: boolean;
}

export class NodeRegistry {
  private readonly entries = new Map<string, Entry>();
  private readonly syncs = new Map<string, SyncState>();
  private readonly retryIds = new Set<string>();
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly touchTimer: NodeJS.Timeout;
  private closing = false;
  private readonly retryDelayMs: number;
  private readonly now: () => Date;

  constructor(private readonly options: NodeRegistryOptions) {
    this.retryDelayMs = options.retryDelayMs ?? 1_000;
    this.now = options.now ?? (() => new Date());
    // The lease expired while we lived: every record we hold must be written again. Through the
    // retry timer, so an etcd that keeps failing cannot turn this into a tight loop.
    options.store.onRecordsLost(() => {
      for (const id of this.entries.keys()) this.retryLater(id);
    });
    this.touchTimer = setInterval(() => {
      for (const id of this.entries.keys()) this.sync(id);
    }, options.touchIntervalMs ?? 60_000);
    this.touchTimer.unref();
  }

  /** Nodes held by this replica (not all nodes: those are in the store). */
  connected(): NodeRecord[] {
    return [...this.entries.values()].map((e) => structuredClone(e.record));
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
      claimed: false,
      close,
    };
    this.entries.set(node.id, entry);
    if (previous) {
      this.options.logger.warn({ node: node.id }, 'a newer stream for this node id replaced the old one (two nodes with one id?)');
      previous.close('replaced by a newer stream for the same node id');
    }
    this.options.metrics?.connectedNodes.set(this.entries.size);
    this.sync(node.id);
    const isCurrent = (): boolean => this.entries.get(node.id) === entry;
    return {
      id: node.id,
      acked: (kind, version) => {
        if (!isCurrent()) return;
        if (kind === 'config') entry.record.configVersion = version;
        else entry.record.healthRevision = version;
        this.sync(node.id);
      },
      nacked: (kind, version, error) => {
        if (!isCurrent()) return;
        // Health NACKs are not config NACKs; lastNack is what operators read about config.
        if (kind === 'config') entry.record.lastNack = { version, error, at: this.now().toISOString() };
        this.sync(node.id);
      },
      disconnect: () => {
        if (!isCurrent()) return;
        this.entries.delete(node.id);
        this.options.metrics?.connectedNodes.set(this.entries.size);
        this.sync(node.id);
      },
    };
  }

  /** Brings the store in line with memory for one id: put the current record, or remove it. */
  private sync(id: string): void {
    if (this.closing) return;
    let state = this.syncs.get(id);
    if (!state) {
      state = { running: false, again: false };
      this.syncs.set(id, state);
    }
    if (state.running) {
      state.again = true;
      return;
    }
    state.running = true;
    const run = state;
    void (async () => {
      do {
        run.again = false;
        const entry = this.entries.get(id);
        try {
          if (entry) {
            // Only the stream's first write takes the record over: a later one (an ACK, a lost
            // lease) must not overwrite a replica that took the node after this stream went quiet.
            const written = await this.options.store.put(structuredClone(entry.record), { claim: !entry.claimed });
            entry.claimed = true;
            if (!written) this.options.logger.info({ node: id }, "another replica owns this node's record now; not overwriting it");
          } else await this.options.store.remove(id);
        } catch (err) {
          this.options.logger.warn({ node: id, err: (err as Error).message }, 'cannot publish node state; retrying');
          this.retryLater(id);
        }
      } while (run.again && !this.closing);
      run.running = false;
      if (!this.entries.has(id) && !this.retryIds.has(id)) this.syncs.delete(id);
    })();
  }

  private retryLater(id: string): void {
    if (this.closing) return;
    this.retryIds.add(id);
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      const ids = [...this.retryIds];
      this.retryIds.clear();
      for (const retry of ids) this.sync(retry);
    }, this.retryDelayMs);
  }

  /**
   * Stops writing to the store (shutdown): the streams are ended by the stream server and the
   * store's close() drops all of this replica's records in one step (lease revoke).
   */
  stop(): void {
    this.closing = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.touchTimer);
    this.entries.clear();
    this.options.metrics?.connectedNodes.set(0);
  }
}
