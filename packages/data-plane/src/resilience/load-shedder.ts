/**
 * Node-wide admission: a cap on concurrent requests and, optionally, shedding while the event loop
 * lags. Event-loop delay is sampled by perf_hooks.monitorEventLoopDelay and judged every
 * SAMPLE_MS from the interval's p99 (the histogram is reset each time), so the request path reads
 * one boolean and one counter. Shedding new requests while the loop lags lets the requests already
 * admitted finish instead of every request slowing down together.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

export const SAMPLE_MS = 250;

export interface LoadShedderOptions {
  /** Most requests in flight on this process; 0: no cap. */
  maxConcurrentRequests: number;
  /** Shed while the event loop's p99 delay over the last SAMPLE_MS exceeds this (ms); 0: off. */
  maxEventLoopDelayMs: number;
}

export class LoadShedder {
  /** True while the event loop lags past the limit; read by the request path. */
  lagging = false;
  readonly maxConcurrent: number;
  private histogram: IntervalHistogram | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly options: LoadShedderOptions) {
    this.maxConcurrent = options.maxConcurrentRequests > 0 ? options.maxConcurrentRequests : Number.POSITIVE_INFINITY;
    if (options.maxEventLoopDelayMs > 0) {
      const h = monitorEventLoopDelay({ resolution: 10 });
      h.enable();
      this.histogram = h;
      const limitNs = options.maxEventLoopDelayMs * 1e6;
      this.timer = setInterval(() => {
        this.lagging = h.count > 0 && h.percentile(99) > limitNs;
        h.reset();
      }, SAMPLE_MS);
      this.timer.unref();
    }
  }

  /** Whether a new request may start with `inFlight` already running. */
  admit(inFlight: number): boolean {
    return inFlight < this.maxConcurrent && !this.lagging;
  }

  close(): void {
    clearInterval(this.timer);
    this.histogram?.disable();
    this.histogram = undefined;
  }
}
