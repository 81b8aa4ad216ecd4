/**
 * What data planes receive, computed in one place: a stored version with the self-registered
 * backends merged into their pools, as resources with their texts and hashes and the digest of the
 * whole. Every push is encoded from views (push-encoder.ts), and a node's state is "the view it
 * runs". Anything else that must change between storage and the wire (decrypting secrets for
 * nodes, say) belongs in buildPushView and nowhere else.
 *
 * Views are immutable and shared by every stream; a view's resources are the stored ones (same
 * objects, same texts) except where the merge changed them, so building one after a one-pool
 * change re-encodes that pool only.
 */
import { configDigest, type Config, type TlsSecrets, type VersionedConfig } from '@lb/shared';
import type { StoredConfig } from '../store/config-store.js';
import { encodeConfig, type EncodedConfig } from '../store/encoded-config.js';
import type { Registration } from '../store/registration-store.js';

export interface PushView extends VersionedConfig {
  /** Local to this process: tells views apart for caches keyed by base view. */
  readonly id: number;
  readonly historyId: string;
  /** Counts changes of the merged registrations within one version (0: none merged yet). */
  readonly generation: number;
  readonly encoded: EncodedConfig;
  /** configDigest of the resources: what a node running this view reports in Hello. */
  readonly digest: string;
  /**
   * The key material the version needs (tls/snapshot-secrets.ts adds it); absent: none. Secrets
   * are not resources: every config push carries all of them, and they are not in the digest.
   */
  readonly secrets?: TlsSecrets | undefined;
  /** Tells secrets apart without comparing keys: '' for none; a node running the same digest with other secrets gets a push. */
  readonly secretsId?: string | undefined;
}

let views = 0;

/**
 * A registration is left out while its pool does not exist or its id or address is already used by
 * a configured backend of the pool: config wins, and a view never fails validation because of a
 * registration. Pools without registrations stay the stored (shared, frozen) objects.
 */
export function mergeRegistrations(config: Config, registrations: readonly Registration[]): Config {
  if (registrations.length === 0) return config;
  const pools = { ...config.pools };
  for (const r of registrations) {
    const pool = pools[r.pool];
    if (!Object.hasOwn(pools, r.pool) || pool === undefined) continue;
    const address = r.backend.address.toLowerCase();
    if (pool.backends.some((b) => b.id === r.backend.id || b.address.toLowerCase() === address)) continue;
    pools[r.pool] = { ...pool, backends: [...pool.backends, structuredClone(r.backend)] };
  }
  return { ...config, pools };
}

export function buildPushView(stored: StoredConfig, registrations: readonly Registration[], generation: number): PushView {
  const config = mergeRegistrations(stored.config, registrations);
  // Only pools the merge touched are new objects: every other resource reuses its stored text.
  const encoded = config === stored.config ? stored.encoded : encodeConfig(config, stored.encoded);
  const hashes = new Map<string, string>();
  for (const [key, r] of encoded.resources) hashes.set(key, r.hash);
  return { id: ++views, historyId: stored.historyId, version: stored.version, generation, config, encoded, digest: configDigest(hashes) };
}

/** The same view with other secrets: a new view (new id) sharing the resources and their encodings. */
export function withSecrets(view: PushView, secrets: TlsSecrets, secretsId: string): PushView {
  return { ...view, id: ++views, secrets, secretsId };
}
