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
  /**
   * The highest version written staged above `version` (?stage=true: in the history, not current);
   * absent when none is. Version numbers are never reused: the next one is above both.
   */
  staged?: number;
}

/** The number the next version (staged or not) gets. */
export function nextVersion(pointer: ConfigPointer): number {
  return Math.max(pointer.version, pointer.staged ?? 0) + 1;
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
   * the garbage collector, got there first: read again and retry). A `staged` record is stored the
   * same way but the pointer keeps naming `base`, and records it as `staged`.
   */
  commit(record: ConfigVersionRecord, encoded: EncodedConfig, base: StoredConfig): Promise<boolean>;
  /**
   * Makes the staged `version` current (a rollout finished), only if the pointer still says
   * `seen` and `version` is above it; false otherwise.
   */
  promote(version: number, seen: ConfigPointer): Promise<boolean>;
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
