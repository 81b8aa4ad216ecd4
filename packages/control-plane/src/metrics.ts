/** Prometheus metrics of one control-plane process; one registry per instance so tests don't share. */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export class CpMetrics {
  readonly registry = new Registry();
  /** The newest config version this replica knows (what it pushes). */
  readonly configVersion: Gauge;
  /** DP streams this replica holds (Hello received, not yet closed). */
  readonly connectedNodes: Gauge;
  /** Pushes answered by nodes (result ack|nack) or failed to send (result error). */
  readonly pushes: Counter<'kind' | 'result'>;
  /** Pushes written to streams, by kind and whether a delta or a full state. */
  readonly pushesSent: Counter<'kind' | 'mode'>;
  /** Bytes of those pushes (each stream counts what it was sent, though encoded once). */
  readonly pushBytes: Counter<'kind' | 'mode'>;
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    this.configVersion = new Gauge({ name: 'lb_cp_config_version', help: 'Newest config version known to this replica', registers });
    this.connectedNodes = new Gauge({ name: 'lb_cp_connected_nodes', help: 'Data-plane streams held by this replica', registers });
    this.pushes = new Counter({
      name: 'lb_cp_pushes_total',
      help: 'Pushes to data planes by kind (config|health) and result (ack|nack|error)',
      labelNames: ['kind', 'result'],
      registers,
    });
    this.pushesSent = new Counter({
      name: 'lb_cp_pushes_sent_total',
      help: 'Pushes written to data-plane streams by kind (config|health) and mode (delta|full)',
      labelNames: ['kind', 'mode'],
      registers,
    });
    this.pushBytes = new Counter({
      name: 'lb_cp_push_bytes_total',
      help: 'Bytes of pushes written to data-plane streams by kind (config|health) and mode (delta|full)',
      labelNames: ['kind', 'mode'],
      registers,
    });
    this.httpRequests = new Counter({
      name: 'lb_cp_http_requests_total',
      help: 'REST requests by method, route template and status',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
  }
}
