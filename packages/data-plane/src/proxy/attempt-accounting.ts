/**
 * What one attempt to one backend does to the counters, the breaker, outlier detection and the
 * algorithm's feedback — in one place, the way Envoy hangs stats, outlier detection and load
 * feedback off one "attempt finished with this outcome" callback. The attempt itself
 * (upstream-attempt.ts) only reports; the request's life (proxy-call.ts) decides what follows.
 */
import { OUTCOME_FAILED, recordLatency, recordLoad, rawHeaderNumber, requestEnded, requestStarted } from '../balancer/host.js';
import type { UpstreamErrorKind } from '../errors.js';
import type { CompiledBackend, RouteTarget } from '../routing/routing-table.js';

/** What accounting needs of an attempt. */
export interface AccountedAttempt {
  readonly target: RouteTarget;
  readonly backend: CompiledBackend;
  /** A half-open breaker's trial. */
  readonly trial: boolean;
  /** It reached a connection (it no longer counts as pending). */
  connected: boolean;
  /** performance.now() at dispatch, for pools whose algorithm learns from latency. */
  startedAt: number;
}

/** How an attempt ended, as the breaker and outlier detection see it. */
export const OUTCOME = {
  /** The backend answered with `status`. */
  RESPONSE: 0,
  /** The backend failed: no connection, a reset, a timeout, a protocol error. */
  BACKEND_FAILURE: 1,
  /** It says nothing about the backend: the client left, or its request could not be sent. */
  NO_VERDICT: 2,
} as const;
export type Outcome = (typeof OUTCOME)[keyof typeof OUTCOME];

/** The attempt is dispatched: it counts as in flight, and as pending until it has a connection. */
export function attemptStarted(a: AccountedAttempt): void {
  const rt = a.backend.runtime;
  const load = a.target.pool.resilience.load;
  requestStarted(rt);
  rt.pending++;
  load.active++;
  load.pending++;
  a.connected = false;
  a.startedAt = performance.now();
}

/** The attempt is on a connection. */
export function attemptConnected(a: AccountedAttempt): void {
  if (a.connected) return;
  a.connected = true;
  a.backend.runtime.pending--;
  a.target.pool.resilience.load.pending--;
}

/** The response head arrived: its latency, and what latency- and load-aware algorithms learn from it. */
export function attemptResponded(a: AccountedAttempt, rawHeaders: readonly string[]): void {
  const now = performance.now();
  const ms = now - a.startedAt;
  const rt = a.backend.runtime;
  a.target.pool.latency.observe(ms);
  rt.responseSeconds += ms / 1000;
  rt.responses++;
  const fb = a.target.pool.feedback;
  if (fb === undefined) return;
  if (fb.latencyDecayMs !== undefined) recordLatency(rt, ms, now, fb.latencyDecayMs);
  if (fb.loadHeader !== undefined) recordLoad(rt, rawHeaderNumber(rawHeaders, fb.loadHeader), now, fb.loadDecayMs);
}

/**
 * The attempt is over: what it took is given back, and its outcome told to the breaker (a
 * response counts as a failure from 500 on), outlier detection and the pool's error counters.
 * `status` is the response's for RESPONSE; `kind` the failure's for BACKEND_FAILURE.
 */
export function attemptEnded(a: AccountedAttempt, outcome: Outcome, status: number, kind: UpstreamErrorKind | undefined): void {
  const rt = a.backend.runtime;
  const load = a.target.pool.resilience.load;
  if (!a.connected) {
    rt.pending--;
    load.pending--;
  }
  load.active--;
  requestEnded(rt);
  rt.outcomes[outcome === OUTCOME.RESPONSE ? (status / 100) | 0 : outcome === OUTCOME.BACKEND_FAILURE ? OUTCOME_FAILED : 0]!++;
  const breaker = rt.breaker;
  if (breaker !== null) {
    if (outcome === OUTCOME.NO_VERDICT) breaker.release(a.trial);
    else breaker.record(outcome === OUTCOME.RESPONSE && status < 500, a.trial);
  }
  // Passive health: one null check when the pool has no outlierDetection.
  const outlier = rt.outlier;
  if (outcome === OUTCOME.RESPONSE) outlier?.onStatus(status);
  else if (outcome === OUTCOME.BACKEND_FAILURE) {
    outlier?.onGatewayError();
    if (kind !== undefined) a.target.pool.errors.byKind[kind]++;
  }
}
