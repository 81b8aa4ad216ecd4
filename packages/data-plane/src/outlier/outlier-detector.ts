/**
 * Passive health checking (Envoy's outlier detection) from this node's own traffic. The forwarder
 * tells each backend's tracker how every request ended; a run of `consecutive5xx` 5xx answers or
 * `consecutiveGatewayErrors` gateway errors (502/503/504, connect errors, resets, timeouts) ejects
 * the backend locally and at once. No network call is made on the request path: the ejection only
 * flips a flag, and the pool's balancer is rebuilt right after the request's own work (setImmediate).
 *
 * Ejection lasts baseEjectionMs × n for the n-th ejection in a row, capped at
 * max(baseEjectionMs, MAX_EJECTION_MS); every `intervalMs` spent un-ejected earns one step of n
 * back. At most maxEjectionPercent of a pool's active backends are ejected at once, but always at
 * least one (Envoy's rule), unless the percentage is 0. Ejections are reported to the control
 * plane through `report`, which must not block.
 */
import { MAX_EJECTION_MS, type Ejection, type OutlierDetection } from '@lb/shared';
import type { Clock } from '../runtime/clock.js';

export interface OutlierDetectorOptions {
  clock: Clock;
  /** A pool's ejected set changed: rebuild its balancer. Called outside the request path. */
  onChange(pool: string): void;
  /** Fire-and-forget report to the control plane. */
  report?(ejection: Ejection): void;
  /** Schedules work; injectable for tests. Default setTimeout (unref'd). */
  setTimer?(fn: () => void, ms: number): { cancel(): void };
  /** Runs `fn` after the current request's synchronous work. Default setImmediate. */
  defer?(fn: () => void): void;
}

export type OutlierOutcome = 'ok' | '5xx' | 'gateway';

/** Per pool + backend, held by the backend's runtime so the forwarder reaches it in O(1). */
export class OutlierTracker {
  consecutive5xx = 0;
  consecutiveGateway = 0;
  ejected = false;
  /** Unix ms the current ejection ends; 0 when not ejected. */
  until = 0;
  /** Multiplier of the next ejection's length minus one (ejections in a row). */
  ejections = 0;
  /** When the last ejection ended (for earning the multiplier back). */
  returnedAt = 0;
  timer: { cancel(): void } | undefined;

  constructor(
    readonly pool: string,
    readonly id: string,
    private readonly detector: OutlierDetector,
  ) {}

  /** A response arrived with `status`. */
  onStatus(status: number): void {
    if (status >= 500) {
      this.consecutive5xx++;
      if (status >= 502 && status <= 504) this.consecutiveGateway++;
      else this.consecutiveGateway = 0;
      this.detector.check(this);
    } else {
      this.consecutive5xx = 0;
      this.consecutiveGateway = 0;
    }
  }

  /** The request failed at the backend without a response: connect error, reset, timeout. */
  onGatewayError(): void {
    this.consecutive5xx++;
    this.consecutiveGateway++;
    this.detector.check(this);
  }
}

interface PoolState {
  settings: OutlierDetection;
  /** Active backends of the pool (the base of maxEjectionPercent). */
  size: number;
  trackers: Map<string, OutlierTracker>;
}

export class OutlierDetector {
  private readonly pools = new Map<string, PoolState>();
  private readonly setTimer: NonNullable<OutlierDetectorOptions['setTimer']>;
  private readonly defer: (fn: () => void) => void;

  constructor(private readonly options: OutlierDetectorOptions) {
    this.setTimer =
      options.setTimer ??
      ((fn, ms) => {
        const t = setTimeout(fn, ms);
        t.unref();
        return { cancel: () => clearTimeout(t) };
      });
    this.defer = options.defer ?? ((fn) => void setImmediate(fn));
  }

  /**
   * Sets a pool's settings and members (active backend ids); returns the tracker of each member.
   * Trackers of backends that left are dropped (ejection ends silently); absent settings turn the
   * pool's detection off and return no trackers.
   */
  configure(pool: string, settings: OutlierDetection | undefined, members: readonly string[]): Map<string, OutlierTracker> {
    const state = this.pools.get(pool);
    if (settings === undefined) {
      if (state) for (const t of state.trackers.values()) this.drop(t);
      this.pools.delete(pool);
      return new Map();
    }
    const trackers = new Map<string, OutlierTracker>();
    for (const id of members) trackers.set(id, state?.trackers.get(id) ?? new OutlierTracker(pool, id, this));
    if (state) for (const [id, t] of state.trackers) if (!trackers.has(id)) this.drop(t);
    this.pools.set(pool, { settings, size: members.length, trackers });
    return trackers;
  }

  isEjected(pool: string, id: string): boolean {
    return this.pools.get(pool)?.trackers.get(id)?.ejected === true;
  }

  /** Ejected backends now, for /config. */
  ejected(): Array<{ pool: string; backendId: string; until: number; ejections: number }> {
    const out = [];
    for (const [pool, state] of this.pools)
      for (const t of state.trackers.values()) if (t.ejected) out.push({ pool, backendId: t.id, until: t.until, ejections: t.ejections });
    return out;
  }

  /** Called by a tracker after a failure: ejects when a threshold is reached and the cap allows. */
  check(t: OutlierTracker): void {
    if (t.ejected) return;
    const state = this.pools.get(t.pool);
    if (state === undefined || state.trackers.get(t.id) !== t) return;
    const s = state.settings;
    let reason: string | undefined;
    if (s.consecutive5xx > 0 && t.consecutive5xx >= s.consecutive5xx) reason = `${t.consecutive5xx} consecutive 5xx`;
    else if (s.consecutiveGatewayErrors > 0 && t.consecutiveGateway >= s.consecutiveGatewayErrors)
      reason = `${t.consecutiveGateway} consecutive gateway errors`;
    if (reason === undefined) return;
    if (s.maxEjectionPercent === 0) return;
    let ejectedNow = 0;
    for (const other of state.trackers.values()) if (other.ejected) ejectedNow++;
    const cap = Math.max(1, Math.floor((state.size * s.maxEjectionPercent) / 100));
    if (ejectedNow >= cap) return;
    const now = this.options.clock.now();
    // Time spent back in rotation earns back one step per interval.
    if (t.ejections > 0 && t.returnedAt > 0) t.ejections = Math.max(0, t.ejections - Math.floor((now - t.returnedAt) / s.intervalMs));
    t.ejections++;
    const duration = Math.min(s.baseEjectionMs * t.ejections, Math.max(s.baseEjectionMs, MAX_EJECTION_MS));
    t.ejected = true;
    t.until = now + duration;
    t.consecutive5xx = 0;
    t.consecutiveGateway = 0;
    t.timer = this.setTimer(() => this.uneject(t), duration);
    this.options.report?.({ pool: t.pool, backendId: t.id, ejected: true, reason, untilUnixMs: t.until });
    this.defer(() => this.options.onChange(t.pool));
  }

  /**
   * Applies an ejection decided elsewhere (another worker process of this node) so the whole node
   * agrees: ejected until `untilUnixMs`, or back at once when `ejected` is false. Not reported
   * again, and not subject to this process's cap (the deciding process applied it).
   */
  adopt(ejection: Ejection): void {
    const t = this.pools.get(ejection.pool)?.trackers.get(ejection.backendId);
    if (t === undefined) return;
    if (!ejection.ejected) {
      t.timer?.cancel();
      if (t.ejected) this.uneject(t, false);
      return;
    }
    const remaining = ejection.untilUnixMs - this.options.clock.now();
    if (remaining <= 0) return;
    t.timer?.cancel();
    const was = t.ejected;
    t.ejected = true;
    t.until = ejection.untilUnixMs;
    t.timer = this.setTimer(() => this.uneject(t, false), remaining);
    if (!was) this.defer(() => this.options.onChange(t.pool));
  }

  private uneject(t: OutlierTracker, report = true): void {
    if (!t.ejected) return;
    t.ejected = false;
    t.until = 0;
    t.timer = undefined;
    t.returnedAt = this.options.clock.now();
    t.consecutive5xx = 0;
    t.consecutiveGateway = 0;
    if (this.pools.get(t.pool)?.trackers.get(t.id) !== t) return;
    if (report) this.options.report?.({ pool: t.pool, backendId: t.id, ejected: false, reason: 'ejection time over', untilUnixMs: 0 });
    this.options.onChange(t.pool);
  }

  private drop(t: OutlierTracker): void {
    t.timer?.cancel();
    if (t.ejected) this.options.report?.({ pool: t.pool, backendId: t.id, ejected: false, reason: 'no longer detected', untilUnixMs: 0 });
    t.ejected = false;
  }

  /** Stops every timer (shutdown). */
  close(): void {
    for (const state of this.pools.values()) for (const t of state.trackers.values()) t.timer?.cancel();
  }
}
