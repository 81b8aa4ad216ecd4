/**
 * A pool's retry budget (Finagle's RetryBudget, Envoy's retry_budget): over a sliding window of
 * WINDOW_S seconds, retries may add at most budgetPercent of the pool's requests, plus
 * minRetriesPerSecond × WINDOW_S so a quiet pool can still retry. When a whole pool fails, the
 * retries it sees stay a fixed share of live traffic instead of multiplying it.
 *
 * The request path only bumps `requests` (no clock read); the window is brought up to date when
 * a retry asks to withdraw, which only happens after a failure.
 */
import type { Clock } from '../runtime/clock.js';

export const WINDOW_S = 10;

export class RetryBudget {
  /** Requests sent to the pool (first attempts), ever; bumped by the forwarder. */
  requests = 0;
  private retries = 0;
  /** Cumulative requests/retries at the start of each of the last WINDOW_S seconds (ring). */
  private readonly requestMarks = new Float64Array(WINDOW_S);
  private readonly retryMarks = new Float64Array(WINDOW_S);
  private second = -1;

  constructor(
    private percent: number,
    private minPerSecond: number,
    private readonly clock: Clock,
  ) {}

  /** Takes new settings (a recompiled pool keeps its budget and window). */
  configure(percent: number, minPerSecond: number): void {
    this.percent = percent;
    this.minPerSecond = minPerSecond;
  }

  /** Asks for one retry: true (and counted) when the budget allows it. */
  tryWithdraw(): boolean {
    const s = Math.floor(this.clock.now() / 1000);
    this.advance(s);
    const i = s % WINDOW_S;
    // Marks are taken at the start of each second; the oldest one opens the window.
    const oldest = (i + 1) % WINDOW_S;
    const reqs = this.requests - this.requestMarks[oldest]!;
    const used = this.retries - this.retryMarks[oldest]!;
    const allowed = (reqs * this.percent) / 100 + this.minPerSecond * WINDOW_S;
    if (used + 1 > allowed) return false;
    this.retries++;
    return true;
  }

  /**
   * Gives back a withdrawal whose retry was never sent (the client left during the backoff, or
   * the retry's backend was over a limit by then). It counts in the current window; one given
   * back just after a second turned frees a place there instead of in the second it was taken.
   */
  refund(): void {
    if (this.retries > 0) this.retries--;
  }

  private advance(s: number): void {
    if (this.second < 0) {
      // Requests before the first retry is asked for count from now on (a conservative start).
      this.requestMarks.fill(this.requests);
      this.retryMarks.fill(this.retries);
      this.second = s;
      return;
    }
    // Seconds that passed without a withdrawal all start where we are now.
    const steps = Math.min(WINDOW_S, s - this.second);
    for (let k = 1; k <= steps; k++) {
      const i = (this.second + k) % WINDOW_S;
      this.requestMarks[i] = this.requests;
      this.retryMarks[i] = this.retries;
    }
    if (s > this.second) this.second = s;
  }
}
