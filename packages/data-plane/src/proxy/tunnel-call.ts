/**
 * A WebSocket upgrade's life once it was routed and its backend picked: a connection of its own
 * to the backend (upstream/tunnel.ts) carries the client's upgrade request; on `101 Switching
 * Protocols` the client's connection is taken from the HTTP server (ProxyResponse.takeConnection)
 * and the two sockets are piped to each other, with back-pressure both ways, until either side
 * closes, the tunnel stays silent for the route's idle timeout, or the node drains. Any other
 * answer is relayed as a plain response, after which the client connection closes.
 *
 * A tunnel counts as one request in flight to its backend for as long as it is open (so the
 * least-connections algorithms and the circuit breaker's limits see it); a failed connect is
 * retried elsewhere like a request's. What is counted is attempt-accounting.ts's.
 */
import type { Socket } from 'node:net';
import { classifyUpstreamError, type UpstreamErrorKind } from '../errors.js';
import { FailureKind } from '../resilience/retry-policy.js';
import type { CompiledBackend, CompiledRoute, RouteTarget } from '../routing/routing-table.js';
import type { TunnelHandler } from '../upstream/tunnel.js';
import { ADMIT_TRIAL, admission, OVERLOAD_REASONS } from './admission.js';
import { type AccountedAttempt, attemptConnected, attemptEnded, attemptStarted, OUTCOME } from './attempt-accounting.js';
import type { ProxyRequest, ProxyResponse } from './exchange.js';
import { classifyResponseHeader, HeaderClass } from './hop-by-hop.js';
import { LOCAL_REPLIES, upstreamFailureReply, type LocalReply, sendLocal } from './local-replies.js';
import type { CallContext } from './proxy-call.js';
import type { OpenTunnel, TunnelRegistry } from './tunnel-registry.js';
import { RetryState } from './retry-state.js';

/** What tunnels share: the node's registry of open ones, for the idle sweep and the drain. */
export interface TunnelContext extends CallContext {
  readonly tunnels: TunnelRegistry;
}

/** The 101 answer's head for the client: the backend's end-to-end headers, and the upgrade itself. */
function switchingHead(statusText: string, headers: readonly string[]): string {
  let head = `HTTP/1.1 101 ${statusText === '' ? 'Switching Protocols' : statusText}\r\n`;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (classifyResponseHeader(name) !== HeaderClass.Keep) continue;
    const lower = name.toLowerCase();
    // Upgrade is hop-by-hop, and written below as this hop's.
    if (lower === 'upgrade' || lower === 'keep-alive') continue;
    head += `${name}: ${headers[i + 1]}\r\n`;
  }
  return `${head}Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n`;
}

export class TunnelCall implements TunnelHandler, AccountedAttempt, OpenTunnel {
  connected = false;
  startedAt = 0;
  /** The request part is over: answered, failed, or upgraded. */
  private done = false;
  /** The tunnel has been closed. */
  private closed = false;
  private gone = false;
  private abort: ((err?: Error) => void) | null = null;
  private retry: RetryState | null = null;
  /** The piped pair, once upgraded. */
  private client: Socket | null = null;
  private backendSocket: Socket | null = null;
  /** performance.now() ms of the last byte either way (exact: an idle timeout must never fire early). */
  lastActivity = 0;
  /** An ordinary (not 101) answer is being relayed. */
  private relaying = false;

  constructor(
    private readonly req: ProxyRequest,
    private readonly res: ProxyResponse,
    private readonly ctx: TunnelContext,
    readonly route: CompiledRoute,
    public target: RouteTarget,
    public backend: CompiledBackend,
    public trial: boolean,
    /** The request target sent upstream (the client's, or rewritten by the route). */
    private readonly path: string,
    private readonly headers: string[],
  ) {
    res.on('close', this.onClientClose);
    ctx.metrics.inFlight++;
  }

  /** The route's idle timeout (ms). */
  get idleTimeoutMs(): number {
    return this.route.websocket.idleTimeoutMs;
  }

  send(): void {
    attemptStarted(this);
    this.backend.upstream!.tunnel({ path: this.path, method: 'GET', headers: this.headers, body: null, headersTimeout: this.target.policy.requestMs }, this);
  }

  private readonly onClientClose = (): void => {
    if (this.done || this.client !== null) return;
    this.gone = true;
    this.abort?.();
  };

  // --- TunnelHandler ---

  onConnect(abort: (err?: Error) => void): void {
    if (this.gone) abort();
    else this.abort = abort;
  }

  onUpgrade(statusText: string, headers: readonly string[], socket: Socket, head: Buffer): void {
    attemptConnected(this);
    const taken = this.gone ? undefined : this.res.takeConnection?.();
    if (taken === undefined) {
      // The client left (or its connection cannot be had): the backend's side goes too.
      socket.destroy();
      attemptEnded(this, OUTCOME.NO_VERDICT, 0, undefined);
      this.finish(0);
      return;
    }
    const client = taken.socket;
    this.client = client;
    this.backendSocket = socket;
    this.lastActivity = performance.now();
    // The request is answered (101); from here on the tunnel counts as a tunnel, not a request.
    this.finish(101);
    this.ctx.tunnels.add(this);
    this.ctx.metrics.tunnels++;
    this.ctx.metrics.tunnelsOpened++;
    client.write(switchingHead(statusText, headers), 'latin1');
    if (head.length > 0) client.write(head);
    if (taken.head.length > 0) socket.write(taken.head);
    const touch = (): void => {
      this.lastActivity = performance.now();
    };
    client.on('data', touch);
    socket.on('data', touch);
    client.on('error', () => this.close());
    socket.on('error', () => this.close());
    client.on('close', () => this.close());
    socket.on('close', () => this.close());
    // pipe() carries back-pressure both ways, and a half-close (one side's end) on to the other.
    client.pipe(socket);
    socket.pipe(client);
  }

  /** Ends the tunnel: both sockets are destroyed, and the backend's count given back. */
  close(): void {
    if (this.closed || this.client === null) return;
    this.closed = true;
    this.client.destroy();
    this.backendSocket?.destroy();
    this.ctx.tunnels.delete(this);
    this.ctx.metrics.tunnels--;
    attemptEnded(this, OUTCOME.RESPONSE, 101, undefined);
  }

  onHeaders(statusCode: number, headers: readonly string[], statusText: string): void {
    attemptConnected(this);
    this.relaying = true;
    const res = this.res;
    const kept: string[] = [];
    for (let i = 0; i < headers.length; i += 2) if (classifyResponseHeader(headers[i]!) === HeaderClass.Keep) kept.push(headers[i]!, headers[i + 1]!);
    try {
      res.writeHead(statusCode, statusText, kept);
    } catch (err) {
      this.abort?.(err as Error);
      return;
    }
    this.statusRelayed = statusCode;
  }

  /** The status of the plain answer being relayed. */
  private statusRelayed = 0;

  onData(chunk: Buffer): void {
    this.res.write(chunk);
  }

  onComplete(): void {
    attemptEnded(this, OUTCOME.RESPONSE, this.statusRelayed, undefined);
    this.finish(this.statusRelayed);
    this.res.end();
  }

  onError(err: Error): void {
    if (this.done) return;
    const gone = this.gone || this.res.destroyed;
    const kind: UpstreamErrorKind | undefined = gone ? undefined : classifyUpstreamError(err);
    attemptEnded(this, kind === undefined ? OUTCOME.NO_VERDICT : OUTCOME.BACKEND_FAILURE, 0, kind);
    if (kind === undefined) return this.finish(0);
    if (this.relaying) {
      // Part of a plain answer went out: cut it so the client sees it broke.
      this.finish(this.statusRelayed);
      this.res.destroy();
      return;
    }
    // A backend whose TLS fails never saw the upgrade: tried elsewhere like a refused connect.
    if ((kind === 'connect' || kind === 'tls') && this.mayRetry()) return;
    this.reply(upstreamFailureReply(kind));
  }

  /** A failed connect goes to another backend when the route's retry policy allows (without spending the budget). */
  private mayRetry(): boolean {
    this.retry ??= new RetryState();
    const retry = this.retry;
    if (!retry.decide(this.route, this.target, this.backend.runtime, FailureKind.ConnectFailure, this.req, false)) return false;
    retry.backoff(retry.nextTarget!.policy.retry, this.ctx.random);
    const target = retry.nextTarget!;
    const backend = retry.nextBackend!;
    const a = admission(target, backend.runtime);
    if (a > ADMIT_TRIAL) {
      retry.cancel();
      target.pool.resilience.stats.overloaded[OVERLOAD_REASONS[a]!]++;
      this.reply(LOCAL_REPLIES.overloaded[OVERLOAD_REASONS[a]!], target);
      return true;
    }
    retry.sent();
    target.pool.resilience.stats.retries++;
    this.target = target;
    this.backend = backend;
    this.trial = a === ADMIT_TRIAL;
    this.abort = null;
    this.send();
    return true;
  }

  private reply(reply: LocalReply, target: RouteTarget = this.target): void {
    this.finish(reply.status, target);
    sendLocal(this.res, reply);
  }

  private finish(status: number, target: RouteTarget = this.target): void {
    this.done = true;
    this.ctx.metrics.inFlight--;
    this.res.off('close', this.onClientClose);
    if (status === 0) target.stats.byClass[0]!++;
    else target.stats.count(status);
  }
}
