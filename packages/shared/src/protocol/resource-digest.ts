/**
 * Content hashes both planes compute the same way, so that they can tell without sending the
 * config whether they hold the same one:
 * - a resource's hash is the SHA-256 of its JSON text (JSON.stringify of the validated resource,
 *   which a JSON.parse / JSON.stringify round trip reproduces exactly);
 * - a config's digest is the SHA-256 of its sorted `key hash` lines: equal digests mean equal
 *   resources under equal names.
 */
import { createHash } from 'node:crypto';

export function resourceHash(json: string): string {
  return createHash('sha256').update(json).digest('base64url');
}

/** `hashes`: resource key (`section/name`) → resource hash. */
export function configDigest(hashes: ReadonlyMap<string, string>): string {
  const hash = createHash('sha256');
  for (const key of [...hashes.keys()].sort()) hash.update(`${key} ${hashes.get(key)}\n`);
  return hash.digest('base64url');
}
