/**
 * Latency histograms the request path fills with one comparison loop and two additions, exported
 * at scrape time as Prometheus histograms. prom-client's own Histogram hashes its labels on every
 * observe(); here each series is a plain object the request path already holds (a route's, a
 * pool's), and a family of them is one metric the registry reads through get().
 */
import type { Registry } from 'prom-client';

/** Bucket bounds in seconds: from a loopback hop to a slow backend's tail. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

export class LatencyHistogram {
  /** Per bucket (not cumulative); the last counts what is above every bound. */
  readonly counts = new Float64Array(LATENCY_BUCKETS.length + 1);
  sum = 0;

  constructor(readonly labels: Readonly<Record<string, string>>) {}

  observe(ms: number): void {
    const s = ms / 1000;
    let i = 0;
    while (i < LATENCY_BUCKETS.length && s > LATENCY_BUCKETS[i]!) i++;
    this.counts[i]!++;
    this.sum += s;
  }
}

interface Value {
  value: number;
  labels: Record<string, string | number>;
  metricName: string;
}

/** A histogram family (one series per label set) registered with `registry`; series are created on first use and kept. */
export class HistogramFamily {
  private readonly all = new Map<string, LatencyHistogram>();
  readonly type = 'histogram';
  /** Workers' histograms add up into the node's. */
  readonly aggregator = 'sum';

  constructor(
    readonly name: string,
    readonly help: string,
    registry: Registry,
  ) {
    registry.registerMetric(this as never);
  }

  /** The series for `labels` (keyed by `key`), the same object for the process's life. */
  series(key: string, labels: Record<string, string>): LatencyHistogram {
    let h = this.all.get(key);
    if (h === undefined) {
      h = new LatencyHistogram(labels);
      this.all.set(key, h);
    }
    return h;
  }

  /** What prom-client's registry reads at scrape time. */
  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Value[] }> {
    const values: Value[] = [];
    for (const h of this.all.values()) {
      let cumulative = 0;
      for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
        cumulative += h.counts[i]!;
        values.push({ value: cumulative, labels: { ...h.labels, le: LATENCY_BUCKETS[i]! }, metricName: `${this.name}_bucket` });
      }
      cumulative += h.counts[LATENCY_BUCKETS.length]!;
      values.push({ value: cumulative, labels: { ...h.labels, le: '+Inf' }, metricName: `${this.name}_bucket` });
      values.push({ value: h.sum, labels: { ...h.labels }, metricName: `${this.name}_sum` });
      values.push({ value: cumulative, labels: { ...h.labels }, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }
}
