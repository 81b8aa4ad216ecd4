/**
 * A copy-on-write draft of a config for a mutation to change. The stored config is shared and
 * frozen (a 100,000-backend config is too large to clone per write); the draft's sections are
 * fresh objects, and a resource is cloned the first time the mutation reads it. After the mutation
 * every resource it never read is still the stored object itself, which is how validation
 * (ValidationOptions.trusted) and encoding (encoded-config.ts) know it did not change.
 */
import type { Config } from '@lb/shared';

export interface ConfigDraft {
  /** What the mutation gets: reads and writes like a plain config. */
  readonly config: Config;
  /** The mutation's result with the draft's proxies replaced by plain objects (anything else as is). */
  settle(result: unknown): unknown;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object';
}

export function draftOf(stored: Config): ConfigDraft {
  const plain = new Map<object, Record<string, unknown>>();
  const sections: Record<string, unknown> = {};
  for (const [name, resources] of Object.entries(stored as unknown as Record<string, unknown>)) {
    if (!isObject(resources) || Array.isArray(resources)) {
      sections[name] = resources;
      continue;
    }
    const target: Record<string, unknown> = { ...resources };
    const cloned = new Set<string>();
    // Clone on first read, whichever way it happens (config.pools.web, Object.entries, hasOwn).
    const own = (key: string | symbol): void => {
      if (typeof key !== 'string' || cloned.has(key) || !Object.hasOwn(target, key)) return;
      cloned.add(key);
      if (isObject(target[key]) && target[key] === resources[key]) target[key] = structuredClone(target[key]);
    };
    const proxy = new Proxy(target, {
      get(t, key, receiver) {
        own(key);
        return Reflect.get(t, key, receiver);
      },
      getOwnPropertyDescriptor(t, key) {
        own(key);
        return Reflect.getOwnPropertyDescriptor(t, key);
      },
      set(t, key, value, receiver) {
        if (typeof key === 'string') cloned.add(key);
        return Reflect.set(t, key, value, receiver);
      },
    });
    plain.set(proxy, target);
    sections[name] = proxy;
  }
  const draft = sections as unknown as Config;
  return {
    config: draft,
    settle(result) {
      if (!isObject(result) || Array.isArray(result)) return result;
      const out: Record<string, unknown> = {};
      for (const [name, value] of Object.entries(result)) out[name] = isObject(value) ? (plain.get(value) ?? value) : value;
      return out;
    },
  };
}
