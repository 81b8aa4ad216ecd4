/**
 * Circuit breakers, Envoy's way: limits on what a pool and each of its backends take at once, and
 * a per-backend breaker that opens on error rate.
 *
 * Limits are checked against counters the forwarder keeps anyway (requests in flight, and those
 * still waiting for a connection), so admission is a few comparisons. One request holds one
 * upstream connection (no pipelining): a request in flight that is not waiting holds a connection,
 * so `maxConnections` caps those; past it a new request would wait, and counts against
 * `maxPendingRequests`. Each backend's upstream connection pool also opens at most its
 * perBackend.maxConnections connections (upstream-pools.ts).
 *
 * The error-rate breaker: closed → (failures ≥ thresholdPercent of at least minRequests in the
 * last windowMs) → open: no requests for openMs → half-open: up to trialRequests requests at
 * once; trialRequests successes in a row close it, a failure opens it again.
 */
import type { BreakerLimits, ErrorRateBreaker as ErrorRateSettings } from '@lb/shared';
import type { Clock } from '../runtime/clock.js';

/** In-flight accounting of a pool or a backend. */
export interface LoadCounters {
  /** Requests dispatched and not finished. */
  active: number;
  /** Of those, requests not yet on a connection (queued or connecting). */
  pending: number;
}

/** Which limit refused a request; the value of the X-LB-Overloaded header and the metric label. */
export type OverloadReason = 'backend' | 'pool' | 'circuit-open' | 'node';

/** Whether one more request fits under `limits` given `load`. */
export function withinLimits(load: LoadCounters, limits: BreakerLimits): boolean {
  const active = load.active;
  if (active >= limits.maxRequests) return false;
  // Every request in flight holds a connection or waits for one.
  if (active - load.pending < limits.maxConnections) return true;
  return load.pending < limits.maxPendingRequests;
}

const enum State {
  Closed = 0,
  Open = 1,
  HalfOpen = 2,
}

/** Buckets of the sliding error window. */
const BUCKETS = 10;

export class ErrorRateBreaker {
  private state: State = State.Closed;
  private openUntil = 0;
  private trialsInFlight = 0;
  private trialSuccesses = 0;
  private readonly total = new Float64Array(BUCKETS);
  private readonly failed = new Float64Array(BUCKETS);
  private bucket = -1;
  constructor(
    private settings: ErrorRateSettings,
    private readonly clock: Clock,
    /** Counts openings (the pool's stats). */
    private readonly stats: { breakerOpened: number } = { breakerOpened: 0 },
  ) {}

  configure(settings: ErrorRateSettings): void {
    this.settings = settings;
  }

  get isOpen(): boolean {
    return this.state !== State.Closed;
  }

  /** 0 closed, 1 open, 2 half-open (lb_dp_backend_circuit_state). */
  get stateCode(): number {
    return this.state;
  }

  /**
   * May a request go to this backend now? Returns 0 (no), 1 (yes) or 2 (yes, as a trial: report
   * its outcome with trial = true).
   */
  admit(): 0 | 1 | 2 {
    if (this.state === State.Closed) return 1;
    if (this.state === State.Open) {
      if (this.clock.now() < this.openUntil) return 0;
      this.state = State.HalfOpen;
      this.trialsInFlight = 0;
      this.trialSuccesses = 0;
    }
    if (this.trialsInFlight >= this.settings.trialRequests) return 0;
    this.trialsInFlight++;
    return 2;
  }

  /** The outcome of a request admitted by admit() (`trial` when it answered 2). */
  record(ok: boolean, trial: boolean): void {
    if (trial) {
      if (this.trialsInFlight > 0) this.trialsInFlight--;
      if (this.state !== State.HalfOpen) return;
      if (!ok) return this.open();
      if (++this.trialSuccesses >= this.settings.trialRequests) this.close();
      return;
    }
    if (this.state !== State.Closed) return;
    const now = this.clock.now();
    const width = this.settings.windowMs / BUCKETS;
    const b = Math.floor(now / width);
    if (b !== this.bucket) {
      const steps = this.bucket < 0 ? BUCKETS : Math.min(BUCKETS, b - this.bucket);
      for (let k = 1; k <= steps; k++) {
        const i = (b - steps + k) % BUCKETS;
        this.total[i] = 0;
        this.failed[i] = 0;
      }
      this.bucket = b;
    }
    const i = b % BUCKETS;
    this.total[i]!++;
    if (ok) return;
    this.failed[i]!++;
    let total = 0;
    let failed = 0;
    for (let k = 0; k < BUCKETS; k++) {
      total += this.total[k]!;
      failed += this.failed[k]!;
    }
    if (total >= this.settings.minRequests && failed * 100 >= this.settings.thresholdPercent * total) this.open();
  }

  /**
   * A request admitted by admit() that says nothing about the backend: it was never sent, or its
   * client left (or sent something undici refused) before the backend answered. It counts neither
   * way, but a trial gives its slot back, so a half-open breaker is never left waiting for an
   * outcome that will not come.
   */
  release(trial: boolean): void {
    if (trial && this.trialsInFlight > 0) this.trialsInFlight--;
  }

  private open(): void {
    this.state = State.Open;
    this.openUntil = this.clock.now() + this.settings.openMs;
    this.stats.breakerOpened++;
  }

  private close(): void {
    this.state = State.Closed;
    this.total.fill(0);
    this.failed.fill(0);
    this.bucket = -1;
  }
}
