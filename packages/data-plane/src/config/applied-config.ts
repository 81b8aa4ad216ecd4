/**
 * What a data plane runs, as the control plane reasons about it: a validated config with its
 * version and history, the hash of every resource and the digest of them all
 * (shared/protocol/resource-digest.ts). The node reports history, version and digest in its Hello;
 * a delta applies only on top of exactly the config it was made from.
 */
import { configDigest, resourceHash, resourcesOf, type Config } from '@lb/shared';

export interface AppliedConfig {
  readonly version: number;
  /** '' when unknown (a cache file written before histories existed, or version 0). */
  readonly historyId: string;
  /** Validated, defaults filled in. Shared with the routing table: never changed in place. */
  readonly config: Config;
  /** Resource key (`section/name`) → hash of the resource's JSON. */
  readonly hashes: ReadonlyMap<string, string>;
  readonly digest: string;
}

/**
 * Hashes every resource of `received` — the config as the control plane sent it, parsed: a
 * JSON.stringify of a parsed text reproduces the text, so the hashes are the control plane's even
 * where validation fills in a default it did not write. `config` is the validated form.
 */
export function appliedConfig(version: number, historyId: string, config: Config, received: Config = config): AppliedConfig {
  const hashes = new Map<string, string>();
  for (const { key, value } of resourcesOf(received)) hashes.set(key, resourceHash(JSON.stringify(value)));
  return { version, historyId, config, hashes, digest: configDigest(hashes) };
}
