/**
 * Structured diff between two configs, keyed by names and backend ids rather than array indexes,
 * so removing one backend from the middle of a pool reads as one removal, not a cascade of changes.
 */
import { X509Certificate } from 'node:crypto';
import diff from 'microdiff';
import type { CertificateResource, Config } from './model.js';

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
  const certificates: Record<string, unknown> = {};
  for (const [name, resource] of Object.entries(config.certificates ?? {})) certificates[name] = summarizeCertificate(resource);
  // Absent and empty sections are the same config: a write must not turn one into the other as a change.
  return { pools, routes, listeners: config.listeners ?? {}, certificates };
}

/** A certificate in a diff: its leaf's SHA-256 fingerprint stands for the PEM, which says nothing to a reader. */
function summarizeCertificate(resource: CertificateResource): CertificateResource {
  let fingerprint = 'unparsable';
  try {
    fingerprint = new X509Certificate(resource.certificate).fingerprint256;
  } catch {
    // Validated configs always parse; keep the diff total anyway.
  }
  return { ...resource, certificate: `sha256:${fingerprint}` };
}

/** A whole pool, route, listener or certificate added or removed is reported as written (certificates summarized), not keyed. */
function original(config: Config, path: (string | number)[], keyedValue: unknown): unknown {
  if (path.length !== 2) return keyedValue;
  const [kind, name] = path as [keyof Config, string];
  if (kind === 'certificates') return keyedValue;
  return config[kind]?.[name];
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
