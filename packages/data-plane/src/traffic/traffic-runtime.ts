/**
 * The parts that serve client traffic, apart from the parts that talk to the control plane: the
 * upstream pools, the health store, the snapshot applier (routing table), the forwarder and the
 * client listener. A single-process node (DataPlaneNode) owns one; with --workers N every worker
 * process owns one and is fed snapshots by the primary over IPC.
 */
import type { AddressInfo } from 'node:net';
import type { Logger } from '@lb/shared';
import type { SnapshotCache } from '../cache/snapshot-cache.js';
import { SnapshotApplier } from '../config/snapshot-applier.js';
import { HealthStore } from '../health/health-store.js';
import type { DataPlaneMetrics } from '../metrics.js';
import type { Clock, Random } from '../runtime/clock.js';
import { UpstreamPools, type UpstreamOptions } from '../upstream/upstream-pools.js';
import { Forwarder } from '../proxy/forwarder.js';
import { createProxyServer, drainServer, listen, type ProxyListener, type ProxyServerOptions } from '../proxy/proxy-server.js';

export interface TrafficRuntimeOptions {
  metrics: DataPlaneMetrics;
  logger: Logger;
  random: Random;
  clock: Clock;
  /** Only the process that owns the cache file passes one (never a worker). */
  cache?: SnapshotCache | undefined;
  /** Signs sticky-session cookies (see DataPlaneOptions.stickySecret). */
  stickySecret?: string | undefined;
  upstream?: UpstreamOptions | undefined;
  proxy?: ProxyServerOptions | undefined;
}

export class TrafficRuntime {
  readonly upstreams: UpstreamPools;
  readonly health = new HealthStore();
  readonly applier: SnapshotApplier;
  readonly server: ProxyListener;
  readonly forwarder: Forwarder;
  address: AddressInfo | undefined;

  constructor(options: TrafficRuntimeOptions) {
    this.upstreams = new UpstreamPools(options.upstream);
    options.metrics.connectionSource = () => this.upstreams.connectionCounts();
    this.applier = new SnapshotApplier({
      upstreams: this.upstreams,
      metrics: options.metrics,
      health: this.health,
      logger: options.logger,
      random: options.random,
      clock: options.clock,
      cache: options.cache,
      stickySecret: options.stickySecret,
    });
    this.forwarder = new Forwarder(this.applier, options.metrics, {
      maxHeaders: options.proxy?.maxHeaders,
      underscoreHeaders: options.proxy?.underscoreHeaders,
    });
    this.server = createProxyServer(this.forwarder, options.proxy);
  }

  async listen(host: string, port: number): Promise<AddressInfo> {
    this.address = await listen(this.server, host, port);
    return this.address;
  }

  /** Reopens the access log file, if there is one (SIGHUP, after logrotate moved it). */
  reopenLogs(): void {
    this.forwarder.accessLog?.reopen();
  }

  /**
   * Stops accepting, gives requests in flight `graceMs` to finish, then closes the upstream pools.
   * Resolves true when everything finished within the grace period.
   */
  async drain(graceMs: number): Promise<boolean> {
    const clean = await drainServer(this.server, graceMs, this.forwarder.tunnels);
    await this.upstreams.closeAll(1_000);
    return clean;
  }
}
