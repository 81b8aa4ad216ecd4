/**
 * What a pool's balancer chooses among, and the per-backend state the dynamic algorithms read.
 *
 * A Host is one eligible backend with its effective weight (config weight, or less during slow
 * start). Hosts are rebuilt with every balancer; the BackendRuntime they point to is not: it
 * belongs to one pool + backend id and is carried from table to table (see routing-table.ts), so
 * in-flight counts, latency and reported load survive a config or health change.
 *
 * The request path updates a runtime through the functions below. A balancer that keeps an index
 * over its hosts' load (least connections, least response time, resource based, bounded-load ring)
 * claims each runtime as its `tracker` and is told about every change; building a new balancer
 * over the same runtimes moves the claim (the factory clears it first).
 */

import type { OutlierTracker } from '../outlier/outlier-detector.js';
import type { ErrorRateBreaker } from '../resilience/circuit-breaker.js';

/** Told when a claimed runtime's load changes; `slot` is what the tracker put in `runtime.slot`. */
export interface LoadTracker {
  changed(slot: number): void;
}

export class BackendRuntime {
  /** Requests dispatched to this backend from this node and not finished. */
  active = 0;
  /** Of those, requests not yet on a connection (circuit-breaker accounting). */
  pending = 0;
  /** Peak-EWMA of time to response headers (ms); a seed (pool median) until latencySamples > 0. */
  latencyMs = 0;
  latencySamples = 0;
  /** When latencyMs was last updated (the forwarder's monotonic ms clock). */
  latencyAt = 0;
  /** Smoothed load the backend reports (0..1). */
  load = 0;
  loadSamples = 0;
  loadAt = 0;
  tracker: LoadTracker | null = null;
  /** Passive health of this backend (outlier/outlier-detector.ts); null when the pool has no outlierDetection. */
  outlier: OutlierTracker | null = null;
  /** Error-rate circuit breaker (resilience/circuit-breaker.ts); null when the pool has none. */
  breaker: ErrorRateBreaker | null = null;
  slot = -1;
  /** The signed sticky cookie value, cached with the secret it was signed with. */
  stickyValue: string | undefined = undefined;
  stickySecret: string | undefined = undefined;
  /** Attempts sent here by how they ended (BACKEND_OUTCOMES), for lb_dp_backend_requests_total. */
  readonly outcomes = new Float64Array(7);
  /** Seconds to the response head, summed, and the heads counted: lb_dp_backend_response_seconds. */
  responseSeconds = 0;
  responses = 0;
  /** Failed attempts here that were retried elsewhere. */
  retried = 0;
}

/** The outcome labels of BackendRuntime.outcomes: nothing to say (the client left), a status class, or a failure without one. */
export const BACKEND_OUTCOMES = ['aborted', '1xx', '2xx', '3xx', '4xx', '5xx', 'failed'] as const;
/** BACKEND_OUTCOMES' index of an attempt that failed without a status. */
export const OUTCOME_FAILED = 6;

export interface Host<B = unknown> {
  /** The backend as the caller knows it; returned untouched by picks. */
  readonly backend: B;
  /** The backend id: hash-based algorithms and sticky cookies identify hosts by it, so every node agrees. */
  readonly id: string;
  /** Effective weight, > 0 (hosts with weight ≤ 0 are dropped by the factory). */
  readonly weight: number;
  readonly runtime: BackendRuntime;
  /**
   * The slow-start factor (0.1 → 1) of a host still ramping up; absent: 1. `weight` already
   * includes it; algorithms that ignore weights use it alone (balancer/factory.ts).
   */
  readonly ramp?: number;
}

export function requestStarted(rt: BackendRuntime): void {
  rt.active++;
  const t = rt.tracker;
  if (t !== null) t.changed(rt.slot);
}

export function requestEnded(rt: BackendRuntime): void {
  if (rt.active > 0) rt.active--;
  const t = rt.tracker;
  if (t !== null) t.changed(rt.slot);
}

/**
 * Peak-EWMA (Finagle, Linkerd): a sample above the average replaces it at once, so a backend
 * that slows down is avoided immediately; lower samples pull it down with weight
 * exp(-Δt / decayMs), so recovery is judged over the decay window regardless of request rate.
 */
export function recordLatency(rt: BackendRuntime, latencyMs: number, nowMs: number, decayMs: number): void {
  if (rt.latencySamples === 0 || latencyMs > rt.latencyMs) rt.latencyMs = latencyMs;
  else {
    const w = Math.exp(-Math.max(0, nowMs - rt.latencyAt) / decayMs);
    rt.latencyMs = rt.latencyMs * w + latencyMs * (1 - w);
  }
  rt.latencySamples++;
  rt.latencyAt = nowMs;
  const t = rt.tracker;
  if (t !== null) t.changed(rt.slot);
}

/** Time-weighted EWMA of reported load, clamped to 0..1; the first report is taken as is. */
export function recordLoad(rt: BackendRuntime, load: number, nowMs: number, decayMs: number): void {
  if (!(load >= 0)) return; // NaN or negative: ignore the report
  if (load > 1) load = 1;
  if (rt.loadSamples === 0) rt.load = load;
  else {
    const w = Math.exp(-Math.max(0, nowMs - rt.loadAt) / decayMs);
    rt.load = rt.load * w + load * (1 - w);
  }
  rt.loadSamples++;
  rt.loadAt = nowMs;
  const t = rt.tracker;
  if (t !== null) t.changed(rt.slot);
}

/** `lowerName`'s value in undici's raw response headers (name/value Buffer pairs), as a number; NaN when absent. */
export function rawHeaderNumber(raw: readonly string[], lowerName: string): number {
  const len = lowerName.length;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length !== len) continue;
    let j = 0;
    for (; j < len; j++) {
      let c = name.charCodeAt(j);
      if (c >= 65 && c <= 90) c |= 0x20;
      if (c !== lowerName.charCodeAt(j)) break;
    }
    if (j === len) return Number.parseFloat(raw[i + 1]!);
  }
  return Number.NaN;
}
