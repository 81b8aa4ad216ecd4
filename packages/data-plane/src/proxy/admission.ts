/**
 * Circuit-breaker admission of one more attempt to a backend of a pool: the pool's and the
 * backend's limits (a few comparisons on counters kept anyway), then the backend's error-rate
 * breaker, which may admit the attempt as a half-open trial.
 */
import type { BackendRuntime } from '../balancer/host.js';
import { withinLimits, type OverloadReason } from '../resilience/circuit-breaker.js';
import type { RouteTarget } from '../routing/routing-table.js';

// Admission answers: 0 and 1 admit (1: as a half-open breaker's trial), the others name the limit.
export const ADMIT = 0;
export const ADMIT_TRIAL = 1;
const OVER_POOL = 2;
const OVER_BACKEND = 3;
const OVER_OPEN = 4;

/** The limit each refusing answer names. */
export const OVERLOAD_REASONS: readonly (Exclude<OverloadReason, 'node'> | undefined)[] = [undefined, undefined, 'pool', 'backend', 'circuit-open'];

export function admission(target: RouteTarget, rt: BackendRuntime): number {
  const r = target.pool.resilience;
  if (!withinLimits(r.load, r.limits)) return OVER_POOL;
  if (!withinLimits(rt, r.backendLimits)) return OVER_BACKEND;
  const breaker = rt.breaker;
  if (breaker === null) return ADMIT;
  const a = breaker.admit();
  return a === 1 ? ADMIT : a === 2 ? ADMIT_TRIAL : OVER_OPEN;
}

/** Whether `rt` of `target`'s pool would take an attempt now, without asking the breaker for a trial. */
export function wouldAdmit(target: RouteTarget, rt: BackendRuntime): boolean {
  const r = target.pool.resilience;
  return withinLimits(r.load, r.limits) && withinLimits(rt, r.backendLimits) && !rt.breaker?.isOpen;
}
