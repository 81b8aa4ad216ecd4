/** What the route plugins need; built by app.ts so tests can pass in-memory stores. */
import type { ConfigStore, NodeStore } from '../store/config-store.js';
import type { ConfigWriter } from '../versioning/config-writer.js';
import type { CpMetrics } from '../metrics.js';

export interface ApiDeps {
  store: ConfigStore;
  nodes: NodeStore;
  writer: ConfigWriter;
  metrics: CpMetrics;
}
