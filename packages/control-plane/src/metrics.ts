/** Prometheus metrics of one control-plane process; one registry per instance so tests don't share. */
import { certificateExpiries, type Config } from '@lb/shared';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
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
  /**
   * Seconds from writing a push to its ACK or NACK, by kind. No version label: versions are
   * unbounded, and lb_cp_nodes{version} says which versions the nodes run.
   */
  readonly pushAckSeconds: Histogram<'kind' | 'result'>;
  /** The config versions of the nodes this replica holds, one entry per node (NodeRegistry.versions); read at scrape time. */
  nodeVersions: () => Iterable<number> = () => [];
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
    this.pushAckSeconds = new Histogram({
      name: 'lb_cp_push_ack_seconds',
      help: 'Time from writing a push to a data plane to its answer, by kind (config|health) and result (ack|nack)',
      labelNames: ['kind', 'result'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    const metrics = this;
    new Gauge({
      name: 'lb_cp_nodes',
      help: 'Data planes held by this replica by the config version they last ACKed (0: none yet); only versions some node runs have a series',
      labelNames: ['version'],
      registers,
      collect() {
        this.reset();
        const counts = new Map<number, number>();
        for (const version of metrics.nodeVersions()) counts.set(version, (counts.get(version) ?? 0) + 1);
        for (const [version, n] of counts) this.set({ version: String(version) }, n);
      },
    });
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
