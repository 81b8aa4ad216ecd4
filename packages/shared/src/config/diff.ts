/**
 * Structured diff between two configs, keyed by names and backend ids rather than array indexes,
 * so removing one backend from the middle of a pool reads as one removal, not a cascade of changes.
 */
import diff from 'microdiff';
import type { Config } from './model.js';

export interface ConfigChange {
  op: 'add' | 'remove' | 'change';
  /** Dotted path, backends keyed by id: `pools.web.backends.b1.weight`. */
  path: string;
  before?: unknown;
  after?: unknown;
}

function keyed(config: Config): unknown {
  const pools: Record<string, unknown> = {};
  for (const [name, pool] of Object.entries(config.pools)) {
    const backends: Record<string, unknown> = {};
    for (const b of pool.backends) backends[b.id] = b;
    pools[name] = { ...pool, backends };
  }
  const routes: Record<string, unknown> = {};
  for (const [name, route] of Object.entries(config.routes)) {
    const weights: Record<string, unknown> = {};
    for (const p of route.pools) weights[p.pool] = p;
    routes[name] = { ...route, pools: weights };
  }
  return { pools, routes };
}

/** A whole pool or route added or removed is reported as written, not in its keyed form. */
function original(config: Config, path: (string | number)[], keyedValue: unknown): unknown {
  if (path.length !== 2) return keyedValue;
  const [kind, name] = path as [keyof Config, string];
  return config[kind][name];
}

export function diffConfigs(before: Config, after: Config): ConfigChange[] {
  const opOf = { CREATE: 'add', REMOVE: 'remove', CHANGE: 'change' } as const;
  return diff(keyed(before) as Record<string, unknown>, keyed(after) as Record<string, unknown>).map((d) => {
    const change: ConfigChange = { op: opOf[d.type], path: d.path.join('.') };
    if (d.type !== 'CREATE') change.before = original(before, d.path, d.oldValue);
    if (d.type !== 'REMOVE') change.after = original(after, d.path, d.value);
    return change;
  });
}
