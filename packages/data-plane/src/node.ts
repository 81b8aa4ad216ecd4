/**
 * One data-plane node assembled from its parts: the snapshot applier (routing table), the
 * forwarder on the client listener, the admin listener, the snapshot cache and the discovery
 * client. main.ts turns flags into DataPlaneOptions; tests build nodes directly.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger, type HostPort, type Logger } from '@lb/shared';
import { createAdminServer } from './admin/admin-server.js';
import { SnapshotCache } from './cache/snapshot-cache.js';
import type { PushHandler, SnapshotApplier } from './config/snapshot-applier.js';
import type { HealthStore } from './health/health-store.js';
import { DataPlaneMetrics } from './metrics.js';
import { drainServer, listen, type ProxyServerOptions } from './proxy/proxy-server.js';
import { TrafficRuntime } from './traffic/traffic-runtime.js';
import { DiscoveryClient, type DiscoveryClientOptions } from './push/discovery-client.js';
import { DEFAULT_TRAFFIC_REPORT_MS, TrafficReporter } from './push/traffic-reporter.js';
import type { MetricJson } from './metrics/traffic-summary.js';
import { allocatorInUse } from './runtime/allocator.js';
import { systemClock, systemRandom, type Clock, type Random } from './runtime/clock.js';
import type { UpstreamOptions, UpstreamPools } from './upstream/upstream-pools.js';

export interface DataPlaneOptions {
  /** Control plane gRPC addresses; empty runs the node from its cache file alone. */
  controlPlanes: readonly string[];
  listen: HostPort;
  /** Where the listeners a config names bind (--bind-address). Default: listen's host. */
  bindAddress?: string | undefined;
  adminListen: HostPort;
  nodeId: string;
  zone?: string;
  /** Where the last applied snapshot is kept; undefined keeps none. */
  cacheFile?: string | undefined;
  /** Signs sticky-session cookies; every node of a cluster needs the same one. Default: DEFAULT_STICKY_SECRET. */
  stickySecret?: string | undefined;
  /** Grace period for requests in flight on shutdown (ms). Default 10000. */
  drainTimeoutMs?: number;
  upstream?: UpstreamOptions;
  proxy?: ProxyServerOptions;
  discovery?: { initialBackoffMs?: number; maxBackoffMs?: number; firstMessageTimeoutMs?: number };
  /** Mutual TLS to the control planes (DiscoveryClientOptions.tls); absent: plaintext. */
  controlPlaneTls?: DiscoveryClientOptions['tls'];
  logger?: Logger;
  clock?: Clock;
  random?: Random;
  /** Process-wide default metrics (CPU, memory, event loop); off in tests that build many nodes. */
  defaultMetrics?: boolean;
  /** How often a traffic summary goes to the control plane (ms); 0: never. Default DEFAULT_TRAFFIC_REPORT_MS. */
  trafficReportMs?: number | undefined;
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The base URL of a bound listener. */
export function httpUrl(address: AddressInfo): string {
  return `http://${formatHostPort(address.address, address.port)}`;
}

/**
 * The node's one stream to the control planes, the same for a single process and a cluster primary:
 * it says Hello with `proxyAddress` and hands pushes to `handler`. Not started yet.
 */
export function createDiscoveryClient(
  options: Pick<DataPlaneOptions, 'controlPlanes' | 'nodeId' | 'zone' | 'random' | 'discovery' | 'controlPlaneTls'>,
  proxyAddress: AddressInfo,
  handler: DiscoveryClientOptions['handler'],
  logger: Logger,
  metrics: DataPlaneMetrics,
): DiscoveryClient {
  return new DiscoveryClient({
    addresses: options.controlPlanes,
    nodeId: options.nodeId,
    zone: options.zone ?? '',
    listenAddress: formatHostPort(proxyAddress.address, proxyAddress.port),
    handler,
    logger,
    random: options.random ?? systemRandom,
    ...options.discovery,
    tls: options.controlPlaneTls,
    onConnectionChange: (connected) => metrics.setControlPlaneConnected(connected),
  });
}

/** The node's traffic reports over `discovery`'s stream (push/traffic-reporter.ts), started. */
export function startTrafficReports(
  options: Pick<DataPlaneOptions, 'trafficReportMs'>,
  discovery: DiscoveryClient,
  handler: Pick<PushHandler, 'runningConfig'>,
  metrics: () => Promise<readonly MetricJson[]>,
  logger: Logger,
): TrafficReporter {
  const reporter = new TrafficReporter({
    intervalMs: options.trafficReportMs ?? DEFAULT_TRAFFIC_REPORT_MS,
    metrics,
    running: () => handler.runningConfig(),
    send: (report) => discovery.reportTraffic(report),
    logger,
  });
  reporter.start();
  return reporter;
}

export class DataPlaneNode {
  readonly logger: Logger;
  readonly metrics: DataPlaneMetrics;
  readonly applier: SnapshotApplier;
  readonly upstreams: UpstreamPools;
  readonly health: HealthStore;
  readonly cache: SnapshotCache | undefined;
  private readonly traffic: TrafficRuntime;
  private readonly adminServer: Server;
  private discovery: DiscoveryClient | undefined;
  private reporter: TrafficReporter | undefined;
  private draining = false;
  private stopping: Promise<void> | undefined;
  /** Bound addresses, known after start(). */
  proxyAddress: AddressInfo | undefined;
  adminAddress: AddressInfo | undefined;

  constructor(private readonly options: DataPlaneOptions) {
    this.logger = options.logger ?? createLogger('data-plane');
    this.metrics = new DataPlaneMetrics({ defaultMetrics: options.defaultMetrics ?? true, backendLimit: options.proxy?.metricsBackendLimit });
    const metrics = this.metrics;
    this.cache =
      options.cacheFile === undefined
        ? undefined
        : new SnapshotCache(options.cacheFile, this.logger, { onWrite: (ok) => metrics.cacheWrite(ok ? 'ok' : 'error') });
    this.traffic = new TrafficRuntime({
      metrics,
      logger: this.logger,
      random: options.random ?? systemRandom,
      clock: options.clock ?? systemClock,
      cache: this.cache,
      stickySecret: options.stickySecret,
      upstream: options.upstream,
      proxy: options.proxy,
      bindAddress: options.bindAddress ?? options.listen.host,
      drainTimeoutMs: options.drainTimeoutMs,
    });
    this.applier = this.traffic.applier;
    metrics.certificates = () => this.applier.current?.config.certificates;
    this.upstreams = this.traffic.upstreams;
    this.health = this.traffic.health;
    this.adminServer = createAdminServer(
      {
        ready: () => {
          if (this.draining) return { ready: false, reason: 'shutting down' };
          if (this.applier.current === undefined) return { ready: false, reason: 'no config snapshot applied yet' };
          return { ready: true };
        },
        describeConfig: () => this.applier.describe(),
      },
      metrics.registry,
      this.logger,
    );
  }

  get proxyUrl(): string {
    return httpUrl(this.proxyAddress!);
  }

  get adminUrl(): string {
    return httpUrl(this.adminAddress!);
  }

  /** Loads the cache (opening the listeners it names), opens --listen and the admin port, then connects to the control planes. */
  async start(): Promise<void> {
    await this.applier.loadCache();
    this.proxyAddress = await this.traffic.listen(this.options.listen.host, this.options.listen.port);
    this.adminAddress = await listen(this.adminServer, this.options.adminListen.host, this.options.adminListen.port);
    this.logger.info(
      { listen: this.proxyUrl, admin: this.adminUrl, nodeId: this.options.nodeId, allocator: allocatorInUse(), node: process.version },
      'data plane listening',
    );
    if (this.options.controlPlanes.length > 0) {
      this.discovery = createDiscoveryClient(this.options, this.proxyAddress, this.applier, this.logger, this.metrics);
      this.discovery.start();
      this.reporter = startTrafficReports(this.options, this.discovery, this.applier, () => this.metrics.registry.getMetricsAsJSON(), this.logger);
      // Ejections are local and immediate; the control plane hears of them afterwards.
      this.applier.onEjection((ejection) => this.discovery?.report(ejection));
    }
  }

  /** The control plane the node is streaming from, if any. */
  get controlPlane(): string | undefined {
    return this.discovery?.connectedTo;
  }

  /** SIGHUP: reopen the access log file (logrotate moved it). */
  reopenLogs(): void {
    this.traffic.reopenLogs();
  }

  /**
   * Graceful stop: /readyz turns 503, the listener stops accepting, requests in flight get the
   * drain period to finish, then upstream pools, the cache writer and the admin port close.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    this.draining = true;
    this.reporter?.stop();
    this.discovery?.stop();
    const grace = this.options.drainTimeoutMs ?? 10_000;
    const clean = await this.traffic.drain(grace);
    if (!clean) this.logger.warn({ graceMs: grace }, 'drain period over; closed the remaining client connections');
    await this.cache?.flush();
    await drainServer(this.adminServer, 1_000);
  }
}
