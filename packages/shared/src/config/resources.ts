/**
 * A config seen as named resources. Every top-level member of a config document is a section —
 * `pools`, `routes`, and whatever sections the model grows (listeners, certificates…) — mapping
 * names to resources. Storage (content-addressed objects), push deltas and digests work on this
 * view only, so they need no change when a section is added: only the schema and the code that
 * reads a section know what its resources hold.
 */
import type { Config } from './model.js';

/** A config as sections of named resources; every Config is one. */
export type ResourceSections = Record<string, Record<string, unknown>>;

/** Where a resource sits: its section and its name in it. */
export interface ResourceName {
  section: string;
  name: string;
}

/** Names never contain "/" (NAME_PATTERN), so `section/name` is unambiguous. */
export function resourceKey(section: string, name: string): string {
  return `${section}/${name}`;
}

export function parseResourceKey(key: string): ResourceName {
  const slash = key.indexOf('/');
  return { section: key.slice(0, slash), name: key.slice(slash + 1) };
}

export function sectionsOf(config: Config): ResourceSections {
  return config as unknown as ResourceSections;
}

/** Every resource of `config`, section by section, in document order. */
export function* resourcesOf(config: Config): Generator<{ section: string; name: string; key: string; value: unknown }> {
  for (const [section, resources] of Object.entries(sectionsOf(config))) {
    for (const [name, value] of Object.entries(resources)) yield { section, name, key: resourceKey(section, name), value };
  }
}
