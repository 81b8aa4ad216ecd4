/**
 * The gRPC side of the push path: ConfigDiscovery.Stream, one bidirectional stream per DP node.
 * The DP opens with Hello; we answer with the newest config snapshot and a full health update,
 * then push every newer version (never an older one) and record the node's ACKs and NACKs.
 *
 * A node that stops reading (stalled, or on a slow link) fills its stream; from then on pushes
 * are not queued behind it one by one. Every config push is a whole snapshot and every health
 * update can be replaced by a full one, so a congested stream keeps only the newest config and
 * a note that health is behind, and sends those two when it drains: memory per node stays
 * bounded however many versions go by, and the node catches up in two messages.
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { KEEPALIVE, loadDiscovery, type ControlMessage, type Logger, type NodeMessage, type PushKind, type VersionedConfig } from '@lb/shared';
import type { CpMetrics } from '../metrics.js';
import type { ConfigSource } from './config-feed.js';
import type { HealthDelta, HealthSource } from './health-source.js';
import type { NodeReportSink } from '../health/ejection-store.js';
import type { NodeHandle, NodeRegistry, PushKindName } from './node-registry.js';

/** Node ids end up in etcd keys and logs: keep them to a safe, bounded alphabet. */
const NODE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/**
 * Unanswered pushes remembered per stream and per kind; older nonces are forgotten (their ACKs are
 * ignored). Per kind, so a burst of health deltas never pushes out the config push whose ACK says
 * which version the node runs.
 */
const MAX_PENDING = 32;

export interface StreamServerOptions {
  config: ConfigSource;
  health: HealthSource;
  registry: NodeRegistry;
  logger: Logger;
  metrics?: CpMetrics;
  /** Where ejection reports of nodes go (GET /v1/pools/{pool}/health shows them); absent: dropped. */
  reports?: NodeReportSink;
  /** A stream that sends no Hello within this time is ended. */
  helloTimeoutMs?: number;
  nonce?: () => string;
}

type Call = grpc.ServerDuplexStream<NodeMessage, ControlMessage>;

function kindName(kind: PushKind | undefined): PushKindName | undefined {
  if (kind === 'PUSH_KIND_CONFIG') return 'config';
  if (kind === 'PUSH_KIND_HEALTH') return 'health';
  return undefined;
}

/** One DP stream from open to close. */
class NodeStream {
  private node: NodeHandle | undefined;
  private closed = false;
  /** The newest config version sent on this stream; see onHello for why it may start at -1. */
  private lastConfigVersion = 0;
  /** Generation of merged registrations sent with lastConfigVersion (see push/merged-config.ts). */
  private lastGeneration = 0;
  private readonly pending: Record<PushKindName, Map<string, number>> = { config: new Map(), health: new Map() };
  private readonly unsubscribe: Array<() => void> = [];
  private readonly helloTimer: NodeJS.Timeout;
  private readonly logger: Logger;
  /** call.write() said the stream is full; pushes wait for 'drain' (see the file comment). */
  private congested = false;
  /** The newest config that came while congested. */
  private heldConfig: VersionedConfig | undefined;
  /** Health changed while congested: a full health update follows the drain. */
  private healthBehind = false;

  constructor(
    private readonly call: Call,
    private readonly options: StreamServerOptions,
    private readonly onClosed: (stream: NodeStream) => void,
  ) {
    this.logger = options.logger.child({ peer: call.getPeer() });
    this.helloTimer = setTimeout(
      () => this.fail(grpc.status.DEADLINE_EXCEEDED, 'no Hello received; the first message must be Hello'),
      options.helloTimeoutMs ?? 10_000,
    );
    call.on('data', (message: NodeMessage) => this.onMessage(message));
    // The DP half-closed: it is going away; finish our side too.
    call.on('end', () => this.end());
    call.on('cancelled', () => this.cleanup('cancelled by the node'));
    call.on('error', (err) => this.cleanup(`stream error: ${err.message}`));
    call.on('close', () => this.cleanup('closed'));
  }

  private onMessage(message: NodeMessage): void {
    if (this.closed) return;
    if (!this.node) return this.onHello(message);
    switch (message.kind) {
      case 'ack':
        if (message.ack) this.onAnswer(message.ack.nonce, message.ack.version, message.ack.kind, undefined);
        return;
      case 'nack':
        if (message.nack) this.onAnswer(message.nack.nonce, message.nack.version, message.nack.kind, message.nack.error || 'no reason given');
        return;
      case 'report':
        // Observations only: recorded for operators, never acknowledged, never awaited by the node.
        if (message.report) this.options.reports?.record(this.node.id, message.report);
        return;
      default:
        this.logger.warn({ node: this.node.id, kind: message.kind }, 'ignoring unexpected message after Hello');
    }
  }

  private onHello(message: NodeMessage): void {
    const hello = message.kind === 'hello' ? message.hello : undefined;
    if (!hello) return this.fail(grpc.status.FAILED_PRECONDITION, 'the first message must be Hello');
    if (!NODE_ID_RE.test(hello.nodeId)) {
      return this.fail(grpc.status.INVALID_ARGUMENT, `Hello.node_id "${hello.nodeId}" is invalid: use 1-128 of [A-Za-z0-9._-], starting alphanumeric`);
    }
    clearTimeout(this.helloTimer);
    // Version 0 (nothing written yet) is the empty config. A node with nothing gets it, so it
    // becomes ready; a node already running a cached version keeps it until a real version
    // exists, so a wiped or fresh etcd never empties a working fleet.
    this.lastConfigVersion = hello.cachedVersion === 0 ? -1 : 0;
    this.node = this.options.registry.connect({ id: hello.nodeId, address: hello.address, zone: hello.zone }, (reason) =>
      this.fail(grpc.status.ALREADY_EXISTS, reason),
    );
    this.logger.info({ node: hello.nodeId, zone: hello.zone, cachedVersion: hello.cachedVersion }, 'node connected');
    // Config first, then the health that refers to its backends; both before any later change.
    const latest = this.options.config.latest();
    if (latest) this.sendConfig(latest);
    this.sendHealth({ ...this.options.health.full(), full: true });
    this.unsubscribe.push(this.options.config.subscribe((config) => this.sendConfig(config)));
    this.unsubscribe.push(this.options.health.subscribe((delta) => this.sendHealth(delta)));
  }

  private onAnswer(nonce: string, version: number, kind: PushKind, error: string | undefined): void {
    const pushed: PushKindName | undefined = this.pending.config.has(nonce) ? 'config' : this.pending.health.has(nonce) ? 'health' : undefined;
    if (pushed === undefined || !this.node) {
      this.logger.debug({ nonce, version }, 'answer to an unknown or forgotten push; ignored');
      return;
    }
    this.pending[pushed].delete(nonce);
    const pushKind = kindName(kind) ?? pushed;
    this.options.metrics?.pushes.inc({ kind: pushKind, result: error === undefined ? 'ack' : 'nack' });
    if (error === undefined) {
      this.node.acked(pushKind, version);
    } else {
      this.logger.warn({ node: this.node.id, version, error }, 'node refused a push');
      this.node.nacked(pushKind, version, error);
    }
  }

  /**
   * Versions only move forward on a stream. The same version is sent again only when its merged
   * registrations changed (a higher generation): registrations are not config versions.
   */
  private sendConfig(config: VersionedConfig): void {
    if (this.congested) {
      this.heldConfig = config;
      return;
    }
    const generation = (config as { generation?: number }).generation ?? 0;
    if (config.version < this.lastConfigVersion || (config.version === this.lastConfigVersion && generation <= this.lastGeneration)) return;
    this.lastConfigVersion = config.version;
    this.lastGeneration = generation;
    const nonce = this.remember('config', config.version);
    this.send(
      {
        config: {
          version: config.version,
          nonce,
          configJson: JSON.stringify(config.config),
          baseVersion: 0,
          upserted: [],
          removed: [],
          historyId: '',
          digest: '',
        },
      },
      'config',
    );
  }

  private sendHealth(delta: HealthDelta): void {
    if (this.congested) {
      this.healthBehind = true;
      return;
    }
    const nonce = this.remember('health', delta.revision);
    this.send({ health: { revision: delta.revision, nonce, full: delta.full, backends: delta.backends } }, 'health');
  }

  private remember(kind: PushKindName, version: number): string {
    const nonce = (this.options.nonce ?? randomUUID)();
    const pending = this.pending[kind];
    pending.set(nonce, version);
    if (pending.size > MAX_PENDING) {
      const oldest = pending.keys().next().value;
      if (oldest !== undefined) pending.delete(oldest);
    }
    return nonce;
  }

  private send(message: ControlMessage, kind: PushKindName): void {
    if (this.closed) return;
    try {
      if (!this.call.write(message)) {
        this.congested = true;
        this.call.once('drain', this.onDrain);
      }
    } catch (err) {
      this.options.metrics?.pushes.inc({ kind, result: 'error' });
      this.logger.warn({ err: (err as Error).message }, 'push failed');
    }
  }

  private readonly onDrain = (): void => {
    if (this.closed) return;
    this.congested = false;
    const config = this.heldConfig;
    this.heldConfig = undefined;
    // Config first, then the health that refers to its backends (as on Hello); either may find
    // the stream full again, and then waits for the next drain.
    if (config !== undefined) this.sendConfig(config);
    if (this.healthBehind) {
      this.healthBehind = false;
      this.sendHealth({ ...this.options.health.full(), full: true });
    }
  };

  /** Ends the stream with an error status the DP can read. */
  fail(code: grpc.status, details: string): void {
    if (this.closed) return;
    this.logger.info({ node: this.node?.id, code, details }, 'ending node stream');
    this.cleanup(details);
    this.call.emit('error', Object.assign(new Error(details), { code, details }));
  }

  /** Ends the stream with status OK (shutdown, or the node half-closed). */
  end(): void {
    if (this.closed) return;
    this.cleanup('ended');
    this.call.end();
  }

  private cleanup(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.helloTimer);
    for (const off of this.unsubscribe) off();
    if (this.node) {
      this.logger.info({ node: this.node.id, reason }, 'node disconnected');
      this.node.disconnect();
    }
    this.onClosed(this);
  }
}

export class StreamServer {
  readonly server: grpc.Server;
  private readonly streams = new Set<NodeStream>();

  constructor(private readonly options: StreamServerOptions) {
    this.server = new grpc.Server({
      'grpc.keepalive_time_ms': KEEPALIVE.timeMs,
      'grpc.keepalive_timeout_ms': KEEPALIVE.timeoutMs,
      // DPs ping every KEEPALIVE.timeMs even between pushes; permit that so they are never refused.
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.http2.min_ping_interval_without_data_ms': Math.floor(KEEPALIVE.timeMs / 2),
    });
    this.server.addService(loadDiscovery().service, {
      Stream: (call: Call) => {
        this.streams.add(new NodeStream(call, this.options, (s) => this.streams.delete(s)));
      },
    });
  }

  /** Binds `host:port` (port 0 picks one) and resolves with the bound port. */
  listen(host: string, port: number): Promise<number> {
    const target = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    return new Promise((resolve, reject) => {
      this.server.bindAsync(target, grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound)));
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
