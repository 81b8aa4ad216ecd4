/**
 * What one L4 session does to the shared per-backend state — the open-connection counts
 * least_connections and the breaker limits read, outlier detection, the pool's error counters —
 * in one place, as attempt-accounting.ts does for HTTP attempts. A session counts as open from
 * its connect's start, so concurrent connects spread over the pool too.
 */
import { OUTCOME_FAILED, requestEnded, requestStarted, type BackendRuntime } from '../balancer/host.js';
import type { UpstreamErrorKind } from '../errors.js';
import type { CompiledBackend, RouteTarget } from '../routing/routing-table.js';

/**
 * Whether `backend` of `target`'s pool takes one more connection: the pool's and the backend's
 * circuit-breaker maxConnections (L4 connections do not queue, so the request limits do not apply).
 */
export function admitsConnection(target: RouteTarget, rt: BackendRuntime): boolean {
  const r = target.pool.resilience;
  return r.load.active < r.limits.maxConnections && rt.active < r.backendLimits.maxConnections;
}

export function sessionOpened(target: RouteTarget, backend: CompiledBackend): void {
  requestStarted(backend.runtime);
  target.pool.resilience.load.active++;
}

export function sessionClosed(target: RouteTarget, backend: CompiledBackend): void {
  target.pool.resilience.load.active--;
  requestEnded(backend.runtime);
}

/** The backend failed the session: no connection (connect, timeout) or a reset while piping. */
export function backendFailed(target: RouteTarget, backend: CompiledBackend, kind: UpstreamErrorKind): void {
  const rt = backend.runtime;
  rt.outcomes[OUTCOME_FAILED]!++;
  rt.outlier?.onGatewayError();
  target.pool.errors.byKind[kind]++;
}

/** A session the backend ended cleanly: a success for outlier detection (its error streak ends). */
export function backendServed(backend: CompiledBackend): void {
  backend.runtime.outlier?.onStatus(200);
}
