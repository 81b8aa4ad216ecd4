/**
 * The gRPC side of the push path: ConfigDiscovery.Stream, one bidirectional stream per DP node
 * (node-stream.ts holds one). Pushes are encoded once for every stream that gets them
 * (push-encoder.ts) and written as bytes; large pushes in flight share a byte budget
 * (push-budget.ts), so a reconnect storm is admitted at the pace the nodes answer.
 */
import * as grpc from '@grpc/grpc-js';
import { KEEPALIVE, loadDiscovery, type Logger } from '@lb/shared';
import type { PushSecurity } from '../tls/push-security.js';
import type { NodeReportSink } from '../health/ejection-store.js';
import type { NodeViewPlanner } from '../rollout/rollout-planner.js';
import type { TrafficStats } from '../stats/traffic-stats.js';
import type { CpMetrics } from '../metrics.js';
import type { ConfigPointer } from '../store/config-store.js';
import { PushBudget } from './push-budget.js';
import type { HealthSource } from './health-source.js';
import type { PushViewSource } from './merged-config.js';
import { NodeStream, type StreamCall } from './node-stream.js';
import type { NodeRegistry } from './node-registry.js';
import { passThroughResponses, PushEncoder } from './push-encoder.js';

export interface StreamServerOptions {
  config: PushViewSource;
  health: HealthSource;
  registry: NodeRegistry;
  logger: Logger;
  metrics?: CpMetrics;
  /** Where ejection reports of nodes go (GET /v1/pools/{pool}/health shows them); absent: dropped. */
  reports?: NodeReportSink;
  /** Where nodes' traffic reports go (GET /v1/stats); absent: dropped. */
  traffic?: TrafficStats;
  /** Which nodes run a staged version during a rollout; absent: all run the current one. */
  planner?: NodeViewPlanner;
  /** Told of the version each connecting node says it runs (ConfigFeed.noticeVersion); absent: ignored. */
  versionSeen?: (seen: ConfigPointer) => void;
  /** A stream that sends no Hello within this time is ended. */
  helloTimeoutMs?: number;
  /** TLS of the gRPC server (mutual TLS: data planes present certificates); absent: plaintext. */
  credentials?: grpc.ServerCredentials;
  /** Which node may use which id and receive keys (tls/push-security.ts); absent: any id, no keys ever. */
  security?: PushSecurity;
  /** Bytes of large pushes (full snapshots, large deltas) in flight at once, across streams. Default 64 MiB. */
  pushBudgetBytes?: number;
  /** Pushes smaller than this need no admission. Default 64 KiB. */
  pushBudgetFreeBelow?: number;
}

export class StreamServer {
  readonly server: grpc.Server;
  private readonly streams = new Set<NodeStream>();
  readonly budget: PushBudget;

  constructor(private readonly options: StreamServerOptions) {
    this.server = new grpc.Server({
      'grpc.keepalive_time_ms': KEEPALIVE.timeMs,
      'grpc.keepalive_timeout_ms': KEEPALIVE.timeoutMs,
      // DPs ping every KEEPALIVE.timeMs even between pushes; permit that so they are never refused.
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.http2.min_ping_interval_without_data_ms': Math.floor(KEEPALIVE.timeMs / 2),
      // Nothing reads channelz here; with it on, grpc-js counts and timestamps every message of
      // every stream, which is work per node on each push.
      'grpc.enable_channelz': 0,
    });
    this.budget = new PushBudget(options.pushBudgetBytes ?? 64 * 1024 * 1024, options.pushBudgetFreeBelow);
    const deps = {
      views: options.config,
      health: options.health,
      registry: options.registry,
      encoder: new PushEncoder(),
      budget: this.budget,
      versionSeen: options.versionSeen ?? (() => undefined),
      logger: options.logger,
      metrics: options.metrics,
      reports: options.reports,
      traffic: options.traffic,
      planner: options.planner,
      helloTimeoutMs: options.helloTimeoutMs ?? 10_000,
      security: options.security,
    };
    this.server.addService(passThroughResponses(loadDiscovery().service), {
      Stream: (call: StreamCall) => {
        this.streams.add(new NodeStream(call, deps, (s) => this.streams.delete(s)));
      },
    });
  }

  /** Binds `host:port` (port 0 picks one) and resolves with the bound port. */
  listen(host: string, port: number): Promise<number> {
    const target = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    return new Promise((resolve, reject) => {
      this.server.bindAsync(target, this.options.credentials ?? grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound)));
    });
  }

  /** Stops accepting, ends every stream (DPs reconnect elsewhere), then shuts down within `graceMs`. */
  async close(graceMs = 3_000): Promise<void> {
    for (const stream of [...this.streams]) stream.end();
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }
}
