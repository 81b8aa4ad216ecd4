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
import { Forwarder, type ListenerContext } from '../proxy/forwarder.js';
import {
  createProxyServer,
  createRequestGuards,
  drainServer,
  listen,
  type ProxyListener,
  type ProxyServerOptions,
  type RequestGuards,
} from '../proxy/proxy-server.js';
import { TcpListener } from '../l4/tcp-listener.js';
import { DEFAULT_TCP_IO } from '../runtime/raw-tcp-self-test.js';
import { ListenerSet } from './listener-set.js';

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
  /** Where the listeners a config names bind (--bind-address). Default: 127.0.0.1. */
  bindAddress?: string | undefined;
  /** How long a listener that left the config lets its requests finish (ms). Default 10000. */
  drainTimeoutMs?: number | undefined;
}

export class TrafficRuntime {
  readonly upstreams: UpstreamPools;
  readonly health = new HealthStore();
  readonly applier: SnapshotApplier;
  /** The `--listen` listener. */
  readonly server: ProxyListener;
  /** The listeners the applied config names. */
  readonly listeners: ListenerSet;
  private readonly forwarder: Forwarder;
  private readonly guards: RequestGuards;
  address: AddressInfo | undefined;

  constructor(options: TrafficRuntimeOptions) {
    this.upstreams = new UpstreamPools(options.upstream);
    options.metrics.connectionSource = () => this.upstreams.connectionCounts();
    this.guards = createRequestGuards(options.proxy);
    const forwarderFor = (listener?: ListenerContext): Forwarder => {
      const forwarder = new Forwarder(this.applier, options.metrics, {
        maxHeaders: options.proxy?.maxHeaders,
        underscoreHeaders: options.proxy?.underscoreHeaders,
        ...(listener !== undefined ? { listener } : {}),
      });
      forwarder.shedder = this.guards.shedder;
      forwarder.accessLog = this.guards.accessLog;
      return forwarder;
    };
    this.listeners = new ListenerSet({
      host: options.bindAddress ?? '127.0.0.1',
      forwarderFor,
      proxy: options.proxy,
      logger: options.logger,
      drainTimeoutMs: options.drainTimeoutMs ?? 10_000,
      onHandshakeError: (listener) => options.metrics.tlsHandshakeFailed(listener),
      tcpListenerFor: (name, settings) =>
        new TcpListener(name, settings, {
          tables: this.applier,
          l4: options.metrics.l4,
          accessLog: this.guards.accessLog,
          rawHandles: (options.proxy?.l4Io ?? DEFAULT_TCP_IO) === 'handles',
        }),
    });
    this.applier = new SnapshotApplier({
      upstreams: this.upstreams,
      metrics: options.metrics,
      health: this.health,
      logger: options.logger,
      random: options.random,
      clock: options.clock,
      cache: options.cache,
      stickySecret: options.stickySecret,
      listeners: this.listeners,
    });
    this.forwarder = forwarderFor();
    this.server = createProxyServer(this.forwarder, options.proxy);
  }

  async listen(host: string, port: number): Promise<AddressInfo> {
    this.address = await listen(this.server, host, port);
    this.forwarder.bound(this.address.port);
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
    const [clean, cleanListeners] = await Promise.all([drainServer(this.server, graceMs, this.forwarder.tunnels), this.listeners.drain(graceMs)]);
    await this.upstreams.closeAll(1_000);
    await this.guards.close();
    return clean && cleanListeners;
  }
}
