/**
 * The etcd key layout, under a configurable prefix (default /lb). The README's "etcd layout"
 * section documents it; it supersedes DESIGN.md's.
 */

/** Version keys are zero-padded so etcd's byte order is numeric order (range queries, sorting). */
export const VERSION_DIGITS = 12;

export const CHUNK_LIST_SUFFIX = '.chunks';

export class EtcdKeys {
  /** `{"version": n, "historyId": "…"}`: compared (as text) by every write transaction. */
  readonly current: string;
  /** `<n padded>` below it: one small manifest per version (history fields + its resource table's hash). */
  readonly manifestsPrefix: string;
  /** `<hash>` below it: content-addressed texts (resources, resource tables, chunks); `<hash>.chunks`: a split text. */
  readonly objectsPrefix: string;
  /** Moved by the garbage collector before it deletes objects; every write compares it (see object-gc.ts). */
  readonly gcFence: string;
  /** `<replica>/<shard>` below it: a replica's connected nodes, one shard per value, on its lease. */
  readonly nodesPrefix: string;
  /** `<pool>/<backend>` below it: health written by the health-check leader. */
  readonly healthPrefix: string;
  /** `<pool>/<backend>` below it: self-registered backends, each on its own lease. */
  readonly registrationsPrefix: string;
  /** `<pool>/<backend>/<node>` below it: data planes' outlier ejections, on the receiving replica's lease. */
  readonly ejectionsPrefix: string;
  /** The namespace of the health-check leader election (`election/health` below it). */
  readonly electionNamespace: string;
  /** `<name>` below it: API tokens (hashed secrets). */
  readonly tokensPrefix: string;
  /** Set once, when the first start without --admin-token-file created the `admin` token. */
  readonly adminBootstrapped: string;
  /** `<time>-<random>` below it: the audit trail, in time order. */
  readonly auditPrefix: string;
  /** `<node-id>` below it: the last known record of every node, kept after it disconnects. */
  readonly seenNodesPrefix: string;
  /** `<public key id>` below it: certificates' private keys, sealed (secrets/). */
  readonly privateKeysPrefix: string;
  /** The session-ticket keys every node shares, sealed (tls/ticket-keys.ts). */
  readonly ticketKeys: string;
  /** `<id>` below it: staged rollouts (rollout/rollout-store.ts). */
  readonly rolloutsPrefix: string;
  /** The id of the rollout that decides what nodes run now; absent when none does. */
  readonly activeRollout: string;
  /** `<id>/<replica>` below it: each replica's summary of its nodes' traffic during a rollout. */
  readonly rolloutTrafficPrefix: string;

  constructor(prefix: string) {
    const base = prefix.replace(/\/+$/, '');
    this.current = `${base}/config/current`;
    this.manifestsPrefix = `${base}/config/manifests/`;
    this.objectsPrefix = `${base}/config/objects/`;
    this.gcFence = `${base}/config/gc-fence`;
    this.nodesPrefix = `${base}/nodes/`;
    this.healthPrefix = `${base}/health/`;
    this.registrationsPrefix = `${base}/registrations/`;
    this.ejectionsPrefix = `${base}/ejections/`;
    this.electionNamespace = `${base}/`;
    this.tokensPrefix = `${base}/tokens/`;
    this.adminBootstrapped = `${base}/auth/admin-bootstrapped`;
    this.auditPrefix = `${base}/audit/`;
    this.seenNodesPrefix = `${base}/seen-nodes/`;
    this.privateKeysPrefix = `${base}/secrets/keys/`;
    this.ticketKeys = `${base}/secrets/session-ticket-keys`;
    this.rolloutsPrefix = `${base}/rollouts/records/`;
    this.activeRollout = `${base}/rollouts/active`;
    this.rolloutTrafficPrefix = `${base}/rollouts/traffic/`;
  }

  privateKey(id: string): string {
    return this.privateKeysPrefix + id;
  }

  manifest(n: number): string {
    return this.manifestsPrefix + String(n).padStart(VERSION_DIGITS, '0');
  }

  object(hash: string): string {
    return this.objectsPrefix + hash;
  }

  /** The chunk list of a text stored split (object-store.ts). */
  chunkList(hash: string): string {
    return `${this.objectsPrefix + hash}${CHUNK_LIST_SUFFIX}`;
  }

  nodeShard(replica: string, shard: number): string {
    return `${this.nodesPrefix}${replica}/${shard}`;
  }

  seenNode(id: string): string {
    return this.seenNodesPrefix + id;
  }

  token(name: string): string {
    return this.tokensPrefix + name;
  }
}
