/**
 * Messages between the primary and its workers (node:cluster IPC, JSON). The primary holds the
 * control plane stream, the admin port and the cache file; workers hold the client listener and
 * a routing table each, compiled from the same snapshots the primary forwards.
 *
 * Ordering: IPC messages arrive in the order they were sent, so a worker that gets `init` and then
 * a `config` applies them in that order; every `config`/`health` carries a sequence
 * number the worker's `applied` answer repeats.
 */
import type { ConfigSnapshot, Ejection, HealthUpdate } from '@lb/shared';
import type { ConfigView } from '../config/snapshot-applier.js';

/** Tags every message of ours, so prom-client's or Node's own cluster messages are never mistaken for one. */
export const LB = 'lb-dp' as const;

export type ToWorker =
  /** The state to start from: the snapshot to apply (none: the primary has none yet) and all health. */
  | { lb: typeof LB; kind: 'init'; seq: number; snapshot: ConfigSnapshot | null; health: HealthUpdate }
  /** A push as the control plane sent it (full or delta); `replace`: the primary restores the last good config, whole, whatever runs. */
  | { lb: typeof LB; kind: 'config'; seq: number; snapshot: ConfigSnapshot; replace?: boolean }
  | { lb: typeof LB; kind: 'health'; seq: number; update: HealthUpdate }
  /** Another worker ejected (or let back) a backend from its own traffic: follow it, so the node ejects as one. */
  | { lb: typeof LB; kind: 'ejection'; ejection: Ejection }
  /** Scrape: answer with registry.getMetricsAsJSON(). */
  | { lb: typeof LB; kind: 'metrics'; seq: number }
  /** GET /config: answer with the applier's describe(). */
  | { lb: typeof LB; kind: 'describe'; seq: number }
  /** Stop accepting, finish requests in flight within graceMs, exit 0. */
  | { lb: typeof LB; kind: 'drain'; graceMs: number }
  /** SIGHUP reached the primary: reopen the access log (logrotate moved it). */
  | { lb: typeof LB; kind: 'reopen' };

export type FromWorker =
  | { lb: typeof LB; kind: 'hello' }
  /** The answer to init/config/health: applied (ok) or refused with a reason. */
  | { lb: typeof LB; kind: 'applied'; seq: number; ok: boolean; error?: string }
  | { lb: typeof LB; kind: 'listening'; address: string; port: number }
  | { lb: typeof LB; kind: 'listenError'; error: string }
  | { lb: typeof LB; kind: 'metrics'; seq: number; metrics: unknown[] }
  /** The worker's outlier detection ejected a backend (or let it back): for the control plane. */
  | { lb: typeof LB; kind: 'ejection'; ejection: Ejection }
  | { lb: typeof LB; kind: 'describe'; seq: number; view: ConfigView };

export function isOurs(message: unknown): message is { lb: typeof LB; kind: string } {
  return typeof message === 'object' && message !== null && (message as { lb?: unknown }).lb === LB;
}
