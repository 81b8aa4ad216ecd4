/**
 * Sends the control plane a traffic summary (metrics/traffic-summary.ts) every `intervalMs` over
 * the open stream. A timer reads the metrics as a scrape would; the request path never waits on
 * it, and a report that cannot go out (no stream) is dropped: the next window starts anyway.
 */
import type { Logger, TrafficReport } from '@lb/shared';
import { type MetricJson, TrafficSummarizer } from '../metrics/traffic-summary.js';

/** --traffic-report-ms' default. */
export const DEFAULT_TRAFFIC_REPORT_MS = 5_000;

export interface TrafficReporterOptions {
  intervalMs: number;
  /** The node's metrics as prom-client JSON (a worker cluster: their aggregation). */
  metrics: () => Promise<readonly MetricJson[]>;
  /** What the node runs now. */
  running: () => { version: number; historyId: string };
  /** Writes the report on the stream; false when none is open. */
  send: (report: TrafficReport) => boolean;
  logger: Logger;
  now?: () => number;
}

export class TrafficReporter {
  private readonly summarizer = new TrafficSummarizer();
  private readonly now: () => number;
  private readonly startedAt: number;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(private readonly options: TrafficReporterOptions) {
    this.now = options.now ?? Date.now;
    this.startedAt = this.now();
  }

  start(): void {
    if (this.options.intervalMs <= 0 || this.timer !== undefined) return;
    this.timer = setInterval(() => void this.tick(), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One window: read, summarise, send. A slow read (workers answering late) skips ticks, never piles them up. */
  async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const metrics = await this.options.metrics();
      const running = this.options.running();
      this.options.send(this.summarizer.summarize(metrics, this.now(), running.version, running.historyId, this.startedAt));
    } catch (err) {
      this.options.logger.debug({ err: (err as Error).message }, 'could not build a traffic report');
    } finally {
      this.busy = false;
    }
  }
}
