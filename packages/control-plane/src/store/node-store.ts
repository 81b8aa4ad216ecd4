/**
 * Where data-plane nodes are published so that every replica lists all of them (GET /v1/nodes),
 * and remembered after they disconnect. The replica holding a node's stream keeps its state in
 * memory (push/node-registry.ts) and publishes it in batches: no etcd write per ACK.
 * etcd-node-store.ts is the real implementation; memory-node-store.ts serves unit tests.
 */

/** One data-plane node as GET /v1/nodes shows it. */
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

/** A node's last known record: the node as it was, and when it was last seen. */
export interface SeenRecord extends NodeRecord {
  lastSeenAt: string;
}

/** What forgetting a node found. */
export type ForgetResult = 'forgotten' | 'connected' | 'unknown';

/** Connected nodes are published in this many shards per replica, so no stored value grows with the fleet. */
export const NODE_SHARDS = 16;

/** The shard a node id is published in (FNV-1a): the same on every replica. */
export function shardOf(id: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % NODE_SHARDS;
}

export interface NodeStore {
  /**
   * Publishes this replica's connected nodes: each given shard is replaced by `records` (all of
   * the shard's nodes; empty: none). They vanish by themselves when the replica dies (a lease);
   * `onRecordsLost` fires when that happened while it lives, and every shard must be published again.
   */
  publish(shards: ReadonlyMap<number, readonly NodeRecord[]>): Promise<void>;
  /**
   * Remembers these records as the nodes' last known ones, seen now. A record is skipped when the
   * store knows a later stream of the same node (it moved to another replica meanwhile).
   */
  markSeen(records: readonly NodeRecord[]): Promise<void>;
  /**
   * Every node: connected ones (every replica's; a node on two replicas is where its latest stream
   * is) and the last known record of each disconnected one not forgotten yet, by id. Answered from
   * a copy kept current by a watch, not by reading etcd per call. `held`: this replica's nodes as
   * they are now, newer than what it last published (the registry's memory).
   */
  known(held?: readonly NodeRecord[]): Promise<NodeView[]>;
  /** Forgets a disconnected node (DELETE /v1/nodes/{id}); a connected one stays. */
  forget(id: string): Promise<ForgetResult>;
  /** Forgets the disconnected nodes last seen before `before`; returns their ids. */
  forgetDisconnected(before: Date): Promise<string[]>;
  onRecordsLost(listener: () => void): void;
  /** Stops watching and removes every record this replica published. */
  close(): Promise<void>;
}

/**
 * The views GET /v1/nodes lists, from every replica's published records and the last known ones.
 * Among records of one stream (same start), the first given wins: pass the freshest first.
 */
export function nodeViews(live: Iterable<NodeRecord>, seen: Iterable<SeenRecord>): NodeView[] {
  const views = new Map<string, NodeView>();
  for (const { lastSeenAt, ...record } of seen) views.set(record.id, { ...record, status: 'disconnected', lastSeenAt });
  const connected = new Map<string, NodeRecord>();
  for (const record of live) {
    const other = connected.get(record.id);
    if (other === undefined || other.connectedAt < record.connectedAt) connected.set(record.id, record);
  }
  for (const record of connected.values()) views.set(record.id, { ...record, status: 'connected', lastSeenAt: null });
  return [...views.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
