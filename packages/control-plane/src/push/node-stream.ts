/**
 * One data-plane stream, from Hello to close: what the node runs, what to push it next, and its
 * ACKs and NACKs.
 *
 * Config pushes go one at a time and carry the newest view. The stream remembers the view the node
 * runs (ACKed, or recognised from the digest in its Hello) and sends the delta from it; a node
 * whose base is unknown, from another history, or that could not apply a delta, gets the full
 * snapshot. Versions never go back within a history (config-feed.ts): a node that says it runs a
 * later version than this replica knows waits, while the feed catches up or starts a new history.
 * While a push is unanswered newer views only replace the one to send next, so a slow node costs
 * one pending push whatever the write rate, and catches up in one delta.
 *
 * Health updates are small deltas sent as they come; if the stream fills up, the node gets one
 * full health update when it drains instead of every delta it missed.
 */
import * as grpc from '@grpc/grpc-js';
import type { ControlMessage, Logger, NodeMessage, PushKind, TlsSecrets } from '@lb/shared';
import type { NodeReportSink } from '../health/ejection-store.js';
import type { NodeViewPlanner } from '../rollout/rollout-planner.js';
import type { TrafficStats } from '../stats/traffic-stats.js';
import type { CpMetrics } from '../metrics.js';
import type { ConfigPointer } from '../store/config-store.js';
import type { PushBudget } from './push-budget.js';
import type { HealthDelta, HealthSource } from './health-source.js';
import type { PushViewSource } from './merged-config.js';
import type { PushSecurity } from '../tls/push-security.js';
import { type EncodedPush, NO_SECRETS, type PushEncoder, type PushSecrets } from './push-encoder.js';
import type { PushView } from './push-view.js';
import type { NodeHandle, NodeRegistry, PushKindName } from './node-registry.js';

/** Node ids end up in etcd keys and logs: keep them to a safe, bounded alphabet. */
const NODE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** Unanswered health pushes remembered per stream; older nonces are forgotten (their ACKs ignored). */
const MAX_PENDING_HEALTH = 32;

export interface NodeStreamDeps {
  views: PushViewSource;
  health: HealthSource;
  registry: NodeRegistry;
  encoder: PushEncoder;
  budget: PushBudget;
  /** Told of the version each node says it runs (the feed's noticeVersion). */
  versionSeen: (seen: ConfigPointer) => void;
  logger: Logger;
  metrics?: CpMetrics | undefined;
  reports?: NodeReportSink | undefined;
  /** Where nodes' traffic reports go (GET /v1/stats, rollouts); absent: dropped. */
  traffic?: TrafficStats | undefined;
  /** Which nodes run a staged version (rollout/rollout-planner.ts); absent: every node runs the current one. */
  planner?: NodeViewPlanner | undefined;
  helloTimeoutMs: number;
  /** Which node may use which id and receive keys (tls/push-security.ts); absent: any id, no keys ever. */
  security?: PushSecurity | undefined;
}

const NO_SECURITY_REASON = 'this control plane pushes no private keys (no push security configured)';

export type StreamCall = grpc.ServerDuplexStream<NodeMessage, ControlMessage>;

interface ConfigInFlight {
  push: EncodedPush;
  view: PushView;
  /** What the node ran when it was sent (the delta's base). */
  before: ConfigPointer;
  /** Budget bytes held for a large push. */
  reserved: number;
  /** performance.now() when it was written (lb_cp_push_ack_seconds). */
  sentAt: number;
}

interface HealthInFlight {
  revision: number;
  sentAt: number;
}

function pointerOf(view: PushView): ConfigPointer {
  return { version: view.version, historyId: view.historyId };
}

function kindName(kind: PushKind | undefined): PushKindName | undefined {
  if (kind === 'PUSH_KIND_CONFIG') return 'config';
  if (kind === 'PUSH_KIND_HEALTH') return 'health';
  return undefined;
}

export class NodeStream {
  private node: NodeHandle | undefined;
  private closed = false;
  /** The view the node runs, as far as this stream knows; undefined: unknown (it runs `claimed`). */
  private runs: PushView | undefined;
  /** The version the node runs when `runs` is unknown: from its Hello, or the base of a refused delta. */
  private claimed: ConfigPointer = { version: 0, historyId: '' };
  private inFlight: ConfigInFlight | undefined;
  /** A full snapshot of this view was refused: not sent again; a newer view will be. */
  private refused: PushView | undefined;
  /** Budget bytes granted for the next large push, or a pending request's withdrawal. */
  private granted = 0;
  private withdraw: (() => void) | undefined;
  private readonly pendingHealth = new Map<string, HealthInFlight>();
  private readonly unsubscribe: Array<() => void> = [];
  private readonly helloTimer: NodeJS.Timeout;
  private readonly logger: Logger;
  /** call.write() said the stream is full; health waits for 'drain'. */
  private congested = false;
  /** Health changed while congested: a full health update follows the drain. */
  private healthBehind = false;
  /** A full health update went out: from now on the node gets deltas. */
  private healthStarted = false;
  /** Why this node gets no keys (undefined: it may); decided once, on Hello. */
  private withheld: string | undefined;
  private withheldLogged = false;
  /** The digest of what the node said it runs in Hello, while no view of this replica's matched it yet. */
  private helloDigest: string | undefined;

  constructor(
    private readonly call: StreamCall,
    private readonly deps: NodeStreamDeps,
    private readonly onClosed: (stream: NodeStream) => void,
  ) {
    this.logger = deps.logger.child({ peer: call.getPeer() });
    this.helloTimer = setTimeout(() => this.fail(grpc.status.DEADLINE_EXCEEDED, 'no Hello received; the first message must be Hello'), deps.helloTimeoutMs);
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
        if (message.report) this.deps.reports?.record(this.node.id, message.report);
        return;
      case 'traffic':
        // The latest window replaces the one before; like reports, never answered.
        if (message.traffic) this.deps.traffic?.record(this.node.id, this, message.traffic);
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
    const identity = this.deps.security?.identityProblem(this.call, hello.nodeId);
    if (identity !== undefined) {
      this.logger.warn({ node: hello.nodeId, reason: identity }, 'refused a node whose certificate does not name it');
      return this.fail(grpc.status.PERMISSION_DENIED, identity);
    }
    this.withheld = this.deps.security === undefined ? NO_SECURITY_REASON : this.deps.security.withholdReason(this.call);
    clearTimeout(this.helloTimer);
    this.claimed = { version: hello.cachedVersion, historyId: hello.cachedHistoryId ?? '' };
    this.deps.versionSeen(this.claimed);
    this.node = this.deps.registry.connect({ id: hello.nodeId, address: hello.address, zone: hello.zone }, (reason) =>
      this.fail(grpc.status.ALREADY_EXISTS, reason),
    );
    this.logger.info({ node: hello.nodeId, zone: hello.zone, cachedVersion: hello.cachedVersion, history: this.claimed.historyId }, 'node connected');
    // A node that runs a view this replica knows (a reconnect) needs at most a delta from it.
    // Looked for again by pump() while this replica has no view yet (just started, the config
    // still loading), so the nodes of a reconnect storm are not sent full snapshots.
    this.helloDigest = hello.cachedDigest || undefined;
    this.recogniseHello();
    // Health first: it is small and tells the node at once that this control plane answers.
    this.sendFullHealth();
    this.unsubscribe.push(this.deps.views.subscribe(() => this.pump()));
    if (this.deps.planner !== undefined) this.unsubscribe.push(this.deps.planner.subscribe(() => this.pump()));
    this.unsubscribe.push(this.deps.health.subscribe((delta) => (this.healthStarted ? this.sendHealth(delta) : this.sendFullHealth())));
    this.pump();
  }

  /** Takes the view the node's Hello names as the one it runs, once this replica knows it. */
  private recogniseHello(): void {
    const digest = this.helloDigest;
    if (digest === undefined || this.runs !== undefined || !this.node) return;
    const { historyId, version } = this.claimed;
    const known = this.deps.views.find(historyId, version, digest) ?? this.deps.planner?.find(historyId, version, digest);
    if (known === undefined) return;
    this.helloDigest = undefined;
    this.runs = known;
    this.node.acked('config', known.version);
  }

  /** Sends the newest view if the node does not run it yet and nothing is in flight. */
  private pump(): void {
    if (this.closed || !this.node || this.inFlight) return;
    this.recogniseHello();
    // A rollout's node gets the staged version; every other node the current one.
    const view = this.deps.planner?.viewFor(this.node.id) ?? this.deps.views.latest();
    if (view === undefined || view === this.runs || view === this.refused) return;
    const runs = this.runs;
    if (
      runs !== undefined &&
      runs.historyId === view.historyId &&
      runs.version === view.version &&
      runs.digest === view.digest &&
      (runs.secretsId ?? '') === (view.secretsId ?? '')
    ) {
      this.runs = view;
      return;
    }
    const before = runs !== undefined ? pointerOf(runs) : this.claimed;
    if (before.historyId === view.historyId && view.version < before.version) {
      // Never back within a history: this replica lags, or the store lost versions (the feed sorts it out).
      this.deps.versionSeen(before);
      return;
    }
    // A wiped or fresh store has no config yet: a node running one keeps it.
    if (view.version === 0 && runs === undefined && this.claimed.version > 0) return;
    // Whatever goes out now, the node's answer tells what it runs from here on.
    this.helloDigest = undefined;
    const secrets = this.secretsFor(view);
    const push = runs !== undefined && runs.historyId === view.historyId ? this.deps.encoder.delta(runs, view, secrets) : this.deps.encoder.full(view, secrets);
    let reserved = 0;
    if (push.bytes.length >= this.deps.budget.freeBelow) {
      if (this.granted === 0) return this.requestBudget(push.bytes.length);
      reserved = this.granted;
      this.granted = 0;
    }
    this.inFlight = { push, view, before, reserved, sentAt: performance.now() };
    this.send(push, 'config');
  }

  /** The key material this node may have of `view`'s: all of it, or none with the reason (logged once per stream). */
  private secretsFor(view: PushView): PushSecrets {
    const secrets: TlsSecrets | undefined = view.secrets;
    if (secrets === undefined) return NO_SECRETS;
    if (this.withheld === undefined) return { value: secrets, key: view.secretsId ?? '' };
    const needed = secrets.privateKeys.length > 0 || secrets.sessionTicketKeys.length > 0 || secrets.unavailableReason !== '';
    if (needed && !this.withheldLogged) {
      this.withheldLogged = true;
      this.logger.warn({ node: this.node?.id, reason: this.withheld }, 'not sending private keys to this node');
    }
    const reason = secrets.privateKeys.length > 0 || secrets.unavailableReason !== '' ? this.withheld : '';
    return { value: { privateKeys: [], sessionTicketKeys: [], unavailableReason: reason }, key: `withheld:${reason}` };
  }

  private requestBudget(size: number): void {
    if (this.withdraw !== undefined) return;
    let granted = false;
    const withdraw = this.deps.budget.request(size, () => {
      granted = true;
      this.withdraw = undefined;
      this.granted = size;
      // Not from inside request(): pump() is what asked.
      queueMicrotask(() => this.pump());
    });
    if (!granted) this.withdraw = withdraw;
  }

  private onAnswer(nonce: string, version: number, kind: PushKind, error: string | undefined): void {
    if (!this.node) return;
    const pushed = this.inFlight?.push.nonce === nonce ? 'config' : this.pendingHealth.has(nonce) ? 'health' : undefined;
    if (pushed === undefined) {
      this.logger.debug({ nonce, version }, 'answer to an unknown or forgotten push; ignored');
      return;
    }
    const result = error === undefined ? 'ack' : 'nack';
    this.deps.metrics?.pushes.inc({ kind: kindName(kind) ?? pushed, result });
    const sentAt = pushed === 'health' ? this.pendingHealth.get(nonce)!.sentAt : this.inFlight!.sentAt;
    this.deps.metrics?.pushAckSeconds.observe({ kind: pushed, result }, (performance.now() - sentAt) / 1000);
    if (pushed === 'health') {
      this.pendingHealth.delete(nonce);
      if (error === undefined) this.node.acked('health', version);
      else this.node.nacked('health', version, error);
      return;
    }
    const sent = this.inFlight!;
    this.inFlight = undefined;
    if (sent.reserved > 0) this.deps.budget.give(sent.reserved);
    if (error === undefined) {
      this.runs = sent.view;
      this.claimed = pointerOf(sent.view);
      this.node.acked('config', sent.view.version);
    } else if (sent.push.delta) {
      // Its base was not what we thought: it still runs what it ran before; the full snapshot follows.
      this.logger.info({ node: this.node.id, version, base: sent.before.version, error }, 'node could not apply a delta; sending the full snapshot');
      this.runs = undefined;
      this.claimed = sent.before;
    } else {
      this.logger.warn({ node: this.node.id, version, error }, 'node refused a push');
      this.refused = sent.view;
      this.node.nacked('config', version, error);
    }
    this.pump();
  }

  /**
   * The whole health state, once this replica has one (HealthSource.full). Until then the node
   * gets no health at all and keeps what it holds; the first delta after is sent as the full state.
   */
  private sendFullHealth(): void {
    const state = this.deps.health.full();
    if (state === undefined) return;
    this.healthStarted = true;
    this.sendHealth({ ...state, full: true });
  }

  private sendHealth(delta: HealthDelta): void {
    if (this.congested) {
      this.healthBehind = true;
      return;
    }
    const push = this.deps.encoder.health(delta);
    this.pendingHealth.set(push.nonce, { revision: push.version, sentAt: performance.now() });
    if (this.pendingHealth.size > MAX_PENDING_HEALTH) {
      const oldest = this.pendingHealth.keys().next().value;
      if (oldest !== undefined) this.pendingHealth.delete(oldest);
    }
    this.send(push, 'health');
  }

  private send(push: EncodedPush, kind: PushKindName): void {
    if (this.closed) return;
    const mode = push.delta ? 'delta' : 'full';
    this.deps.metrics?.pushesSent.inc({ kind, mode });
    this.deps.metrics?.pushBytes.inc({ kind, mode }, push.bytes.length);
    try {
      // Pre-encoded bytes go out as they are (push-encoder.ts, passThroughResponses).
      if (!this.call.write(push.bytes as unknown as ControlMessage) && !this.congested) {
        this.congested = true;
        this.call.once('drain', this.onDrain);
      }
    } catch (err) {
      this.deps.metrics?.pushes.inc({ kind, result: 'error' });
      this.logger.warn({ err: (err as Error).message }, 'push failed');
    }
  }

  private readonly onDrain = (): void => {
    if (this.closed) return;
    this.congested = false;
    if (this.healthBehind) {
      this.healthBehind = false;
      this.sendFullHealth();
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
    this.withdraw?.();
    const held = this.granted + (this.inFlight?.reserved ?? 0);
    if (held > 0) this.deps.budget.give(held);
    if (this.node) {
      this.logger.info({ node: this.node.id, reason }, 'node disconnected');
      this.deps.traffic?.forget(this.node.id, this);
      this.node.disconnect();
    }
    this.onClosed(this);
  }
}
