/** Prometheus metrics of one control-plane process; one registry per instance so tests don't share. */
import { certificateExpiries, type Config } from '@lb/shared';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { etcdErrors } from './store/etcd-client.js';

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
  /** Where lb_cp_certificate_expiry_seconds reads the current config at scrape time; unset: no series. */
  certificates: () => Config | undefined = () => undefined;

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
    new Counter({
      name: 'lb_cp_etcd_errors_total',
      help: 'etcd operations that failed in this process, by kind: timeout (no answer in time), unavailable (an error), too_large (refused for its size)',
      labelNames: ['kind'],
      registers,
      collect() {
        this.reset();
        for (const [kind, n] of Object.entries(etcdErrors)) this.inc({ kind }, n);
      },
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
    const metrics = this;
    new Gauge({
      name: 'lb_cp_certificate_expiry_seconds',
      help: 'Seconds until each certificate of the current config expires (negative once expired)',
      labelNames: ['certificate'],
      registers,
      // Computed at scrape time: the value moves with the clock, not with config changes.
      collect() {
        this.reset();
        for (const [certificate, seconds] of certificateExpiries(metrics.certificates()?.certificates, Date.now())) this.set({ certificate }, seconds);
      },
    });
  }
}
