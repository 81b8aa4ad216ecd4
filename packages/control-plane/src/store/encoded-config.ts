/**
 * A config as the texts it is stored and pushed as: every resource's JSON and its hash
 * (shared/protocol/resource-digest.ts), plus the size of the whole document. Encoding reuses the
 * text of every resource that is the very same object as in a previous encoding, so a change to one
 * pool of a large config stringifies and hashes that pool only.
 */
import { resourceHash, resourcesOf, type Config } from '@lb/shared';

export interface EncodedResource {
  readonly section: string;
  readonly name: string;
  /** The resource object the text was made from (identity decides reuse). */
  readonly value: unknown;
  readonly json: string;
  readonly hash: string;
}

export interface EncodedConfig {
  /** By resource key (`section/name`), in document order. */
  readonly resources: ReadonlyMap<string, EncodedResource>;
  /** Every section, even empty ones, in document order. */
  readonly sections: readonly string[];
  /** UTF-8 size of the whole config document as JSON.stringify writes it. */
  readonly bytes: number;
}

export function encodeConfig(config: Config, previous?: EncodedConfig): EncodedConfig {
  const resources = new Map<string, EncodedResource>();
  // `{}` plus, per section, `"name":{…}` and the commas between.
  let bytes = 2;
  const sections = Object.keys(config);
  for (const section of sections) bytes += Buffer.byteLength(section) + 5;
  bytes += Math.max(0, sections.length - 1);
  const perSection = new Map<string, number>();
  for (const { section, name, key, value } of resourcesOf(config)) {
    const before = previous?.resources.get(key);
    const reused = before !== undefined && before.value === value;
    const json = reused ? before.json : JSON.stringify(value);
    const hash = reused ? before.hash : resourceHash(json);
    resources.set(key, { section, name, value, json, hash });
    bytes += Buffer.byteLength(name) + 3 + Buffer.byteLength(json);
    perSection.set(section, (perSection.get(section) ?? 0) + 1);
  }
  for (const count of perSection.values()) bytes += count - 1;
  return { resources, sections, bytes };
}

/** The keys whose resource differs between two encodings (changed, added or removed). */
export function changedKeys(before: EncodedConfig, after: EncodedConfig): Set<string> {
  const changed = new Set<string>();
  for (const [key, r] of after.resources) if (before.resources.get(key)?.hash !== r.hash) changed.add(key);
  for (const key of before.resources.keys()) if (!after.resources.has(key)) changed.add(key);
  return changed;
}

/**
 * The resource table of an encoding: section → name → hash, every section present. Its JSON is
 * what a version's manifest points at.
 */
export function resourceTable(encoded: EncodedConfig): Record<string, Record<string, string>> {
  const table: Record<string, Record<string, string>> = {};
  for (const section of encoded.sections) table[section] = {};
  for (const r of encoded.resources.values()) {
    const section = table[r.section] ?? {};
    table[r.section] = section;
    section[r.name] = r.hash;
  }
  return table;
}
