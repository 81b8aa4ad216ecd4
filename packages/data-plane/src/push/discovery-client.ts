/**
 * The data plane's end of ConfigDiscovery.Stream. It keeps one stream open to one of the listed
 * control planes, says Hello with the version it runs, applies each push through the PushHandler
 * and answers ACK or NACK. When a stream fails or ends it moves to the next address after a
 * jittered exponential backoff (full jitter: uniform in [0, min(max, initial·2^attempt)]), so a
 * fleet of nodes does not reconnect in lockstep after a control plane restart.
 *
 * Nothing here is on the request path: a push is applied synchronously in the stream's data
 * handler, and requests keep using the old table until the one-assignment swap.
 */
import * as grpc from '@grpc/grpc-js';
import { KEEPALIVE, loadDiscovery, type ControlMessage, type Ejection, type Logger, type NodeMessage, type PushKind, type TrafficReport } from '@lb/shared';
import type { PushHandler, PushOutcome } from '../config/snapshot-applier.js';
import { systemRandom, type Random } from '../runtime/clock.js';

export interface DiscoveryClientOptions {
  /** Control plane gRPC addresses (`host:port`), tried in turn. */
  addresses: readonly string[];
  nodeId: string;
  zone: string;
  /** Where this node serves client traffic (shown by the control plane in GET /v1/nodes). */
  listenAddress: string;
  handler: PushHandler | AsyncPushHandler;
  logger: Logger;
  random?: Random;
  /** First reconnect delay cap (ms); doubles per failed attempt. Default 200. */
  initialBackoffMs?: number;
  /** Largest reconnect delay cap (ms). Default 10000. */
  maxBackoffMs?: number;
  /**
   * Time for a control plane to send its first message after the stream opens (ms); past it the
   * attempt counts as failed. Catches black-holed addresses sooner than TCP would. It doubles
   * with every failed attempt in a row (up to 16 times), so that a control plane slowed down by a
   * reconnect storm is given longer, never a new wave of the same reconnects. Default 5000.
   */
  firstMessageTimeoutMs?: number;
  onConnectionChange?(connected: boolean, address: string): void;
  /**
   * Mutual TLS to the control planes (--tls-ca, --tls-cert, --tls-key): the CA their certificates
   * chain to, and this node's certificate, whose CN or a DNS name must be the node id. Absent:
   * plaintext, over which a control plane pushes no private keys.
   */
  tls?: { ca: Buffer; cert: Buffer; key: Buffer } | undefined;
}

/**
 * A handler that may answer a push later: a node with worker processes ACKs only once every worker
 * applied it. Replies go out in the order the pushes came, however long each one takes.
 */
export interface AsyncPushHandler extends Omit<PushHandler, 'onConfig' | 'onHealth'> {
  onConfig(snapshot: Parameters<PushHandler['onConfig']>[0]): PushOutcome | Promise<PushOutcome>;
  onHealth(update: Parameters<PushHandler['onHealth']>[0]): PushOutcome | Promise<PushOutcome>;
}

type DuplexCall = grpc.ClientDuplexStream<NodeMessage, ControlMessage>;

/** Large configs (20,000 backends per pool) exceed gRPC's 4 MiB default message size. */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

export class DiscoveryClient {
  private readonly random: Random;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly firstMessageTimeoutMs: number;
  private failures = 0;
  private nextAddress = 0;
  private stopped = true;
  private client: grpc.Client | undefined;
  private call: DuplexCall | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private connectedAddress: string | undefined;
  private replies: Promise<void> = Promise.resolve();

  constructor(private readonly options: DiscoveryClientOptions) {
    if (options.addresses.length === 0) throw new Error('at least one control plane address is needed');
    this.random = options.random ?? systemRandom;
    this.initialBackoffMs = options.initialBackoffMs ?? 200;
    this.maxBackoffMs = options.maxBackoffMs ?? 10_000;
    this.firstMessageTimeoutMs = options.firstMessageTimeoutMs ?? 5_000;
  }

  /** The control plane whose stream is open and has answered; undefined while (re)connecting. */
  get connectedTo(): string | undefined {
    return this.connectedAddress;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  /** Closes the stream and stops reconnecting. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const call = this.call;
    const client = this.client;
    this.call = undefined;
    this.client = undefined;
    call?.cancel();
    client?.close();
    this.setConnected(undefined);
  }

  /**
   * Sends an observation (an ejection or its end) on the open stream; dropped when none is open.
   * Never waits: reports are informational, the node has already acted on them.
   */
  report(ejection: Ejection): void {
    const call = this.call;
    if (call === undefined || this.connectedAddress === undefined) return;
    try {
      call.write({ report: { ejections: [ejection] } } satisfies NodeMessage);
    } catch (err) {
      this.options.logger.debug({ err: (err as Error).message }, 'could not send an ejection report');
    }
  }

  /** Sends a traffic summary on the open stream; false (dropped) when none is open. Never waits. */
  reportTraffic(report: TrafficReport): boolean {
    const call = this.call;
    if (call === undefined || this.connectedAddress === undefined) return false;
    try {
      call.write({ traffic: report } satisfies NodeMessage);
      return true;
    } catch (err) {
      this.options.logger.debug({ err: (err as Error).message }, 'could not send a traffic report');
      return false;
    }
  }

  private connect(): void {
    this.retryTimer = undefined;
    if (this.stopped) return;
    const { addresses, logger } = this.options;
    const address = addresses[this.nextAddress % addresses.length]!;
    this.nextAddress = (this.nextAddress + 1) % addresses.length;

    const { Client } = loadDiscovery();
    const tls = this.options.tls;
    const credentials = tls === undefined ? grpc.credentials.createInsecure() : grpc.credentials.createSsl(tls.ca, tls.key, tls.cert);
    const client = new Client(address, credentials, {
      'grpc.keepalive_time_ms': KEEPALIVE.timeMs,
      'grpc.keepalive_timeout_ms': KEEPALIVE.timeoutMs,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
      'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
    });
    const call = (client as unknown as { Stream(): DuplexCall }).Stream();
    this.client = client;
    this.call = call;

    let heard = false;
    let finished = false;
    const timeoutMs = this.firstMessageTimeoutMs * 2 ** Math.min(this.failures, 4);
    const firstMessageTimer = setTimeout(() => {
      logger.warn({ controlPlane: address, timeoutMs }, 'control plane did not answer Hello in time');
      call.cancel();
    }, timeoutMs);

    const finish = (reason: string) => {
      if (finished) return;
      finished = true;
      clearTimeout(firstMessageTimer);
      client.close();
      if (this.call !== call) return; // stop() or a newer attempt owns the state now
      this.call = undefined;
      this.client = undefined;
      this.setConnected(undefined);
      if (this.stopped) return;
      // A stream that worked and then ended starts the backoff afresh; one that never answered grows it.
      this.failures = heard ? 0 : this.failures + 1;
      const cap = Math.min(this.maxBackoffMs, this.initialBackoffMs * 2 ** Math.min(this.failures, 30));
      const delay = Math.floor(this.random() * cap);
      // One line when a working stream breaks or the first attempt fails; retries after that go to debug.
      if (heard) logger.warn({ controlPlane: address, reason, retryInMs: delay }, 'control plane stream closed; reconnecting');
      else if (this.failures === 1) logger.warn({ controlPlane: address, reason, retryInMs: delay }, 'cannot reach a control plane; retrying with backoff');
      else logger.debug({ controlPlane: address, reason, retryInMs: delay, failures: this.failures }, 'control plane attempt failed');
      this.retryTimer = setTimeout(() => this.connect(), delay);
    };

    call.on('data', (message: ControlMessage) => {
      if (!heard) {
        heard = true;
        clearTimeout(firstMessageTimer);
        this.failures = 0;
        this.setConnected(address);
      }
      this.handle(call, message);
    });
    // The 'status' event always follows; it decides what happens next. An 'error' needs a listener.
    call.on('error', () => {});
    call.on('status', (status: grpc.StatusObject) => finish(`${grpc.status[status.code] ?? status.code}: ${status.details}`));

    const running = this.options.handler.runningConfig();
    const hello: NodeMessage = {
      hello: {
        nodeId: this.options.nodeId,
        zone: this.options.zone,
        cachedVersion: running.version,
        address: this.options.listenAddress,
        cachedHealthRevision: this.options.handler.healthRevision(),
        cachedHistoryId: running.historyId,
        cachedDigest: running.digest,
      },
    };
    call.write(hello);
  }

  private handle(call: DuplexCall, message: ControlMessage): void {
    const { handler, logger } = this.options;
    let outcome: PushOutcome | Promise<PushOutcome>;
    let kind: PushKind;
    let nonce: string;
    let version: number;
    if (message.config) {
      kind = 'PUSH_KIND_CONFIG';
      ({ nonce, version } = message.config);
      outcome = this.safely(() => handler.onConfig(message.config!));
    } else if (message.health) {
      kind = 'PUSH_KIND_HEALTH';
      ({ nonce, revision: version } = message.health);
      outcome = this.safely(() => handler.onHealth(message.health!));
    } else {
      logger.warn({ kind: message.kind }, 'ignoring a control message of unknown kind');
      return;
    }
    const send = (result: PushOutcome) => {
      const reply: NodeMessage = result.ok ? { ack: { nonce, version, kind } } : { nack: { nonce, version, error: result.error, kind } };
      call.write(reply);
    };
    if (!(outcome instanceof Promise)) return send(outcome);
    // Chained so replies keep the order of the pushes; a stream that closed meanwhile gets none.
    const answered = outcome.then(
      (result) => result,
      (err: unknown): PushOutcome => ({ ok: false, error: `internal error: ${(err as Error).message}` }),
    );
    this.replies = this.replies
      .then(() => answered)
      .then((result) => {
        if (this.call === call) send(result);
      });
  }

  /** A throwing handler is a bug; NACK rather than kill the stream or the process. */
  private safely<T extends PushOutcome | Promise<PushOutcome>>(apply: () => T): T | PushOutcome {
    try {
      return apply();
    } catch (err) {
      this.options.logger.error({ err }, 'applying a push failed unexpectedly');
      return { ok: false, error: `internal error: ${(err as Error).message}` };
    }
  }

  private setConnected(address: string | undefined): void {
    const before = this.connectedAddress;
    this.connectedAddress = address;
    if (before === address) return;
    if (address !== undefined) {
      this.options.logger.info({ controlPlane: address }, 'connected to control plane');
      this.options.onConnectionChange?.(true, address);
    } else if (before !== undefined) this.options.onConnectionChange?.(false, before);
  }
}
