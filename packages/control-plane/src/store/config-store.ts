/**
 * Where config versions live. The REST API and the push side depend only on these interfaces;
 * etcd-config-store.ts is the real implementation, memory-config-store.ts serves unit tests.
 *
 * Contract shared by every implementation:
 * - Version 0 is the implicit empty config before the first write; it is never stored.
 * - Versions are immutable; `commit` succeeds only if the current pointer still equals what
 *   `base` was read at (compare-and-swap), so two writers can never both win.
 * - The current pointer names a version and the history it belongs to. The history id is made
 *   with the first version and changes only when a control plane finds the store went back to an
 *   older version (an etcd restore, see push/config-feed.ts): within one history a version number
 *   names one config forever.
 * - Configs returned are shared and deep-frozen where the store caches them: clone before changing.
 * - Methods throw StoreUnavailableError when the backing store cannot answer in time.
 */
import type { ConfigVersionRecord, VersionedConfig } from '@lb/shared';
import type { EncodedConfig } from './encoded-config.js';

/** A history entry without its config, as GET /v1/versions lists it. */
export type VersionSummary = Omit<ConfigVersionRecord, 'config'>;

export interface ListVersionsOptions {
  /** At most this many entries, newest first. */
  limit: number;
  /** Only versions strictly below this one (the pagination cursor); absent: from the newest. */
  before?: number;
}

/** What the current pointer says. */
export interface ConfigPointer {
  version: number;
  /** '' before the first write. */
  historyId: string;
}

/** The current config as a store holds it, ready to be the base of the next commit. */
export interface StoredConfig extends VersionedConfig, ConfigPointer {
  /** The config's resources as stored: texts and hashes. */
  encoded: EncodedConfig;
  /** Opaque to callers: what a commit on top of this one must find unchanged. */
  readonly guard: unknown;
}

export interface ConfigStore {
  /** The current version and its config; `{version: 0, config: empty}` before the first write. */
  current(): Promise<StoredConfig>;
  /** Just the pointer: a cheap read for "did anything change?". */
  pointer(): Promise<ConfigPointer>;
  /** Just the current version number. */
  currentVersion(): Promise<number>;
  /** One stored version, or undefined if it does not exist (0 is not stored). */
  getVersion(version: number): Promise<ConfigVersionRecord | undefined>;
  listVersions(options: ListVersionsOptions): Promise<VersionSummary[]>;
  /**
   * Stores `record` (whose config `encoded` encodes) as the version after `base`, in `base`'s
   * history (a new one when `base` is version 0), and moves the current pointer to it in one atomic
   * step, only if nothing moved since `base` was read. Returns false otherwise (another writer, or
   * the garbage collector, got there first: read again and retry).
   */
  commit(record: ConfigVersionRecord, encoded: EncodedConfig, base: StoredConfig): Promise<boolean>;
  /**
   * Starts a new history at the current version, only if the pointer still says `seen`; resolves
   * with the new history id, or undefined when the pointer had moved.
   */
  forkHistory(seen: ConfigPointer): Promise<string | undefined>;
  /**
   * Deletes every stored version below `below` except those in `keep`; returns how many went.
   * Versions at or above `below` are never touched, so the current one is safe whatever `keep` says.
   */
  pruneVersions(below: number, keep: ReadonlySet<number>): Promise<number>;
  /** Deletes stored content no remaining version refers to; returns how many objects went. */
  collectGarbage(): Promise<number>;
  /**
   * Calls `onChange` whenever the current pointer may have moved: after every change and after
   * every (re)connection of the watch, since events may have been missed while disconnected.
   * The callback only signals; the caller re-reads. Returns a function that stops it.
   */
  watchCurrent(onChange: () => void): () => void;
  /** Resolves if the store answers within its deadline (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** One data-plane node as GET /v1/nodes shows it (and as /lb/nodes/<id> stores it). */
export interface NodeRecord {
  id: string;
  /** Where the node serves client traffic, as it said in Hello. */
  address: string;
  zone: string;
  /** ISO 8601: when this stream opened. */
  connectedAt: string;
  /** The config version the node last ACKed; 0 until its first ACK. */
  configVersion: number;
  /** The health revision the node last ACKed; 0 until its first ACK. */
  healthRevision: number;
  lastNack: { version: number; error: string; at: string } | null;
  /** The CP replica that holds the node's stream. */
  replica: string;
}

/** A node as GET /v1/nodes shows it: connected now, or last seen at `lastSeenAt` and kept until forgotten. */
export interface NodeView extends NodeRecord {
  status: 'connected' | 'disconnected';
  /** ISO 8601: when a disconnected node's stream ended (or its replica last recorded it); null while connected. */
  lastSeenAt: string | null;
}

/** What forgetting a node found. */
export type ForgetResult = 'forgotten' | 'connected' | 'unknown';

/**
 * Where nodes are published so every replica sees all of them. Records written by this replica
 * disappear by themselves when the replica dies (etcd lease); `onRecordsLost` fires when that
 * happened while the replica lives (etcd unreachable longer than the TTL), and the owner must
 * put its records again.
 */
export interface NodePutOptions {
  /**
   * A stream for the node just opened on this replica: take the record over from any owner whose
   * stream opened earlier (by `connectedAt`). A record of a stream that opened later stays: the
   * node has moved on, and this replica's stream is the stale one (its first write may have been
   * held up by an etcd outage while the node reconnected elsewhere).
   */
  claim?: boolean;
}

export interface NodeStore {
  /**
   * Writes the node's record. A claim writes unless a later stream holds the record; any other write happens only if this replica
   * still owns the record or nobody does, so a replica that lost the node's stream cannot
   * overwrite the new owner's record. Resolves false when the write was skipped for that reason.
   */
  put(record: NodeRecord, options?: NodePutOptions): Promise<boolean>;
  /**
   * The node's stream ended: deletes its record only if this replica still owns it (another may
   * have taken it over), and then keeps it as the node's last known record (disconnected).
   */
  remove(id: string): Promise<void>;
  /** The connected nodes (every replica's). */
  list(): Promise<NodeRecord[]>;
  /** Connected nodes and the last known record of each disconnected one not forgotten yet, by id. */
  known(): Promise<NodeView[]>;
  /** Forgets a disconnected node (DELETE /v1/nodes/{id}); a connected one stays. */
  forget(id: string): Promise<ForgetResult>;
  /** Forgets the disconnected nodes last seen before `before`; returns their ids. */
  forgetDisconnected(before: Date): Promise<string[]>;
  onRecordsLost(listener: () => void): void;
  /** Removes every record this replica owns. */
  close(): Promise<void>;
}
