/**
 * A counter or gauge whose values are read at scrape time from numbers the request path keeps
 * anyway (l4-stats.ts, backend-series.ts): prom-client calls `read` on each scrape and the metric
 * is rebuilt from what it yields, so nothing is counted twice and nothing is updated per request.
 * A counter leaves out label sets at 0 (they have seen nothing yet); a gauge keeps them.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export type Labels = Record<string, string>;

export function scrapedSeries(
  registry: Registry,
  type: 'counter' | 'gauge',
  name: string,
  help: string,
  labelNames: string[],
  read: () => Iterable<[Labels, number]>,
  /** How the cluster primary combines workers' values: `max` for what every worker sees alike. */
  aggregator: 'sum' | 'max' = 'sum',
): void {
  const metric = { name, help, labelNames, aggregator, registers: [registry] };
  if (type === 'counter') {
    new Counter({
      ...metric,
      collect() {
        this.reset();
        for (const [labels, n] of read()) if (n > 0) this.inc(labels, n);
      },
    });
  } else {
    new Gauge({
      ...metric,
      collect() {
        this.reset();
        for (const [labels, n] of read()) this.set(labels, n);
      },
    });
  }
}
