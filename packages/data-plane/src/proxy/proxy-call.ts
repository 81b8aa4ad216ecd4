/**
 * One client request's life once it was admitted and its first backend picked — Envoy's router
 * for one request. It sends attempts (upstream-attempt.ts) one after another, asks its
 * RetryState (retry-state.ts, made on the first failure) whether another is due and where, and
 * turns the outcome into what the client sees: the backend's response streamed with
 * back-pressure both ways, or one of the proxy's local replies (local-replies.ts). What each
 * attempt does to counters, breakers and outlier detection is attempt-accounting.ts's.
 *
 * The response head reaches the client response only with the first body bytes or the end:
 * until then nothing of it has gone out, so a backend that breaks right after its head (a
 * malformed first chunk) still gets its client a 502 rather than a connection closed without a
 * status line. Both client-side servers hold the head back until then anyway.
 */
import type { AccessLog, UpstreamSummary } from '../access-log/access-log.js';
import { classifyUpstreamError, UPSTREAM_ERRORS, type UpstreamErrorKind } from '../errors.js';
import type { DataPlaneMetrics } from '../metrics.js';
import { FailureKind, statusFailure } from '../resilience/retry-policy.js';
import type { Random } from '../runtime/clock.js';
import { applyHeaderRules } from '../routing/header-rules.js';
import type { CompiledBackend, CompiledRoute, RouteTarget } from '../routing/routing-table.js';
import { ADMIT_TRIAL, admission, OVERLOAD_REASONS } from './admission.js';
import { attemptEnded, attemptResponded, OUTCOME } from './attempt-accounting.js';
import type { ProxyRequest, ProxyResponse } from './exchange.js';
import { filterResponseHeaders } from './hop-by-hop.js';
import { LOCAL_REPLIES, upstreamFailureReply, type LocalReply, sendLocal } from './local-replies.js';
import { RetryState } from './retry-state.js';
import { clientAborted, type AttemptOwner, UpstreamAttempt } from './upstream-attempt.js';

/** What every call of one forwarder shares. */
export interface CallContext {
  readonly metrics: DataPlaneMetrics;
  readonly random: Random;
  /** Set while the access log is on. */
  readonly accessLog: AccessLog | undefined;
}

/**
 * The request itself could not be sent — undici refused a header, or the client's body broke
 * off: the client's fault, not the backend's.
 */
function isRequestRefused(err: Error): boolean {
  const code = (err as { code?: string }).code;
  return code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED' || code === UPSTREAM_ERRORS.REQUEST_BODY;
}

/** Whether `headers` (flat name/value pairs) has one named `lower`. */
function hasHeader(headers: readonly string[], lower: string): boolean {
  for (let i = 0; i < headers.length; i += 2) if (headers[i]!.length === lower.length && headers[i]!.toLowerCase() === lower) return true;
  return false;
}

const kCall = Symbol('lb.proxyCall');
type TaggedResponse = ProxyResponse & { [kCall]?: ProxyCall };

/** The call a response belongs to (for the access log), if it was forwarded. */
export function callOf(res: ProxyResponse): ProxyCall | undefined {
  return (res as TaggedResponse)[kCall];
}

// Shared listeners: each finds its call through the symbol, so a request allocates no closures.
function onResponseClose(this: TaggedResponse): void {
  const call = this[kCall];
  if (call !== undefined && !call.done) call.clientGone();
}

function onResponseDrain(this: TaggedResponse): void {
  this[kCall]?.resumeUpstream();
}

function sendLater(call: ProxyCall): void {
  call.sendFirst();
}

function runRetry(call: ProxyCall): void {
  call.retryNow();
}

export class ProxyCall implements AttemptOwner {
  done = false;
  gone = false;
  private attempt: UpstreamAttempt;
  private retry: RetryState | null = null;
  /** The response head, held until the first body bytes or the end (see above). */
  private headStatus = 0;
  private headText = '';
  private headHeaders: string[] | null = null;
  /** The head has been handed to the client response. */
  private headWritten = false;
  private drainHooked = false;

  constructor(
    private readonly req: ProxyRequest,
    private readonly res: ProxyResponse,
    private readonly ctx: CallContext,
    private readonly route: CompiledRoute,
    target: RouteTarget,
    backend: CompiledBackend,
    trial: boolean,
    /** The request target sent upstream (the client's, or rewritten by the route). */
    private readonly path: string,
    /** The upstream request's headers, shared by every attempt. */
    private readonly headers: string[],
    private readonly hasBody: boolean,
    /** A sticky cookie to set on the response; undefined: none. */
    private setCookie: string | undefined,
    /** Index in `headers` of a Host value to fill with each attempt's backend address (a request without Host); -1: none. */
    private readonly hostAt: number,
    /** performance.now() when the request was handed to the forwarder. */
    private readonly startedAt: number,
    /** Strict-Transport-Security to add to the answer (HTTPS only); undefined: none. */
    private readonly hsts: string | undefined,
  ) {
    this.attempt = new UpstreamAttempt(this, target, backend, trial);
    (res as TaggedResponse)[kCall] = this;
    res.on('close', onResponseClose);
    ctx.metrics.inFlight++;
  }

  /** For the access log: where the request went, and how many retries it took. */
  summary(): UpstreamSummary {
    const a = this.attempt;
    return { route: this.route.name, pool: a.target.pool.name, backend: a.backend.id, retries: (this.retry?.attempt ?? 1) - 1 };
  }

  /** Sends the first attempt now. */
  send(): void {
    this.dispatch(this.attempt);
  }

  /**
   * Sends the first attempt once the client-side parser has seen the rest of the packet that
   * brought the head: a malformed chunk sent along with it then fails the request before
   * anything reaches a backend.
   */
  sendSoon(): void {
    setImmediate(sendLater, this);
  }

  /** sendSoon()'s second half: unless the client is gone or its request broke already. */
  sendFirst(): void {
    if (this.done) return;
    // The client's socket is destroyed at once when the rest of its request fails to parse; its
    // 'close' events only come after this check, and a pooled upstream connection would have
    // the head on the wire by then.
    if (this.gone || this.res.destroyed || this.req.destroyed || this.req.socket.destroyed) {
      // Admitted but never sent: a half-open breaker's trial slot goes back.
      this.attempt.backend.runtime.breaker?.release(this.attempt.trial);
      this.finish(0);
      return;
    }
    this.dispatch(this.attempt);
  }

  private dispatch(attempt: UpstreamAttempt): void {
    if (this.hostAt >= 0) this.headers[this.hostAt] = attempt.backend.address;
    const requestMs = attempt.target.policy.requestMs;
    const req = this.req;
    attempt.send({
      path: this.path,
      method: req.method!,
      headers: this.headers,
      body: this.hasBody ? req : null,
      headersTimeout: req.deadlineMs === undefined ? requestMs : this.withinDeadline(requestMs, req.deadlineMs),
      bodyTimeout: requestMs,
    });
  }

  /** A gRPC call's deadline (grpc-timeout), what is left of it, within the route's own limit (0: none). */
  private withinDeadline(requestMs: number, deadlineMs: number): number {
    const left = Math.max(1, Math.ceil(deadlineMs - (performance.now() - this.startedAt)));
    return requestMs === 0 || left < requestMs ? left : requestMs;
  }

  /** The request is answered (or abandoned) for good; `status` 0: the client got nothing. Counted for `target`'s route × pool. */
  private finish(status: number, target: RouteTarget = this.attempt.target): void {
    this.done = true;
    this.ctx.metrics.inFlight--;
    // Nothing is left to cancel when the client goes.
    this.res.off('close', onResponseClose);
    this.route.duration.observe(performance.now() - this.startedAt);
    const stats = target.stats;
    if (status === 0) stats.byClass[0]!++;
    else stats.count(status);
  }

  private reply(reply: LocalReply, target: RouteTarget = this.attempt.target): void {
    this.finish(reply.status, target);
    sendLocal(this.res, reply);
  }

  clientGone(): void {
    this.gone = true;
    // Before onConnect the attempt is still queued in the pool; onConnect aborts it.
    this.attempt.abort?.(clientAborted());
  }

  resumeUpstream(): void {
    this.attempt.resume?.();
  }

  // --- what the current attempt reports (AttemptOwner) ---

  attemptHeaders(attempt: UpstreamAttempt, status: number, rawHeaders: readonly string[], statusText: string): boolean {
    if (status >= 500 && this.mayRetry(attempt, statusFailure(status))) {
      // Read the rest of the answer and drop it (keeps the connection), then try elsewhere.
      attempt.discarding = true;
      return true;
    }
    attemptResponded(attempt, rawHeaders);
    const headers = filterResponseHeaders(rawHeaders);
    if (this.route.responseHeaders !== undefined) applyHeaderRules(headers, this.route.responseHeaders);
    if (this.setCookie !== undefined) headers.push('set-cookie', this.setCookie);
    if (this.hsts !== undefined && !hasHeader(headers, 'strict-transport-security')) headers.push('strict-transport-security', this.hsts);
    this.headStatus = status;
    this.headText = statusText;
    this.headHeaders = headers;
    return true;
  }

  attemptData(chunk: Buffer, release: (() => void) | undefined): boolean {
    if (this.headHeaders !== null && !this.writeHead()) {
      release?.();
      return false;
    }
    const res = this.res;
    if (res.write(chunk, release)) return true;
    if (!this.drainHooked) {
      this.drainHooked = true;
      res.on('drain', onResponseDrain);
    }
    return false;
  }

  attemptComplete(attempt: UpstreamAttempt, trailers: readonly string[] | undefined): void {
    attempt.abort = null;
    attemptEnded(attempt, OUTCOME.RESPONSE, attempt.status, undefined);
    if (attempt.discarding) return this.scheduleRetry();
    if (this.headHeaders !== null && !this.writeHead()) return this.reply(LOCAL_REPLIES.badGateway);
    this.finish(attempt.status);
    // gRPC's status travels in trailers: passed on as they came, where the client response can carry them.
    if (trailers !== undefined && trailers.length > 0) this.res.passTrailers?.(trailers);
    this.res.end();
  }

  attemptFailed(attempt: UpstreamAttempt, err: Error): void {
    attempt.abort = null;
    if (this.done) return;
    const res = this.res;
    // A client that hangs up, or a request that cannot be sent, is not the backend failing:
    // counting it would let impatient or hostile clients open the breakers of healthy backends.
    const gone = this.gone || res.destroyed;
    const refused = isRequestRefused(err);
    const kind: UpstreamErrorKind | undefined = gone || refused ? undefined : classifyUpstreamError(err);
    attemptEnded(attempt, kind === undefined ? OUTCOME.NO_VERDICT : OUTCOME.BACKEND_FAILURE, 0, kind);
    if (gone) return this.finish(0);
    // The failed answer was being dropped for a retry already decided.
    if (attempt.discarding) return this.scheduleRetry();
    if (this.headWritten) {
      // Part of the response is out; all that is left is to cut it short so the client sees it broke.
      this.finish(attempt.status);
      res.destroy();
      return;
    }
    // Nothing of this response reached the client: it gets a proper answer instead.
    this.headHeaders = null;
    if (kind === undefined) return this.reply(LOCAL_REPLIES.badRequest);
    // A retry only while no response has begun: a backend that answered may have acted.
    // A backend whose TLS fails was never reached: another one may be, like after a refused connect.
    if (
      attempt.status === 0 &&
      (((kind === 'connect' || kind === 'tls') && this.mayRetry(attempt, FailureKind.ConnectFailure)) ||
        (kind === 'reset' && this.mayRetry(attempt, FailureKind.Reset)))
    )
      return this.scheduleRetry();
    this.reply(upstreamFailureReply(kind));
  }

  /** Hands the held head to the client response; false when it refused it (the caller answers 502). */
  private writeHead(): boolean {
    const headers = this.headHeaders!;
    this.headHeaders = null;
    const res = this.res;
    try {
      if (this.headText !== '') res.writeHead(this.headStatus, this.headText, headers);
      else res.writeHead(this.headStatus, headers);
    } catch (err) {
      // The client response refused a header the backend sent (a line break in a value…).
      this.attempt.abort?.(err as Error);
      return false;
    }
    this.headWritten = true;
    return true;
  }

  // --- retries ---

  private mayRetry(attempt: UpstreamAttempt, kind: number): boolean {
    if (this.gone) return false;
    // A gRPC call that reached a backend may have acted, whatever its method says: only a call
    // that never did (no connection, a stream the backend refused unprocessed) is tried again.
    if (this.req.grpc === true && kind !== FailureKind.ConnectFailure) return false;
    this.retry ??= new RetryState();
    return this.retry.decide(this.route, attempt.target, attempt.backend.runtime, kind, this.req, this.hasBody);
  }

  private scheduleRetry(): void {
    const retry = this.retry!;
    const delay = retry.backoff(retry.nextTarget!.policy.retry, this.ctx.random);
    if (delay > 0) setTimeout(runRetry, delay, this);
    else setImmediate(runRetry, this);
  }

  /** After the backoff: send the next attempt (the client may have left meanwhile). */
  retryNow(): void {
    const retry = this.retry!;
    const target = retry.nextTarget!;
    const backend = retry.nextBackend!;
    retry.nextTarget = undefined;
    retry.nextBackend = undefined;
    if (this.gone || this.res.destroyed) {
      // Never sent: the withdrawal goes back so that clients who leave do not spend the budget.
      retry.cancel();
      this.finish(0, target);
      return;
    }
    const retries = String(retry.attempt - 1);
    const headers = this.headers;
    if (retry.retryHeaderAt === 0) {
      headers.push('x-retry-count', retries);
      retry.retryHeaderAt = headers.length - 1;
    } else headers[retry.retryHeaderAt] = retries;
    // The failed backend's sticky pin is not worth keeping.
    this.setCookie = undefined;
    target.pool.resilience.stats.retries++;
    // The breaker is asked only now: trials are for requests that will be sent.
    const a = admission(target, backend.runtime);
    if (a > ADMIT_TRIAL) {
      retry.cancel();
      const reason = OVERLOAD_REASONS[a]!;
      target.pool.resilience.stats.overloaded[reason]++;
      this.reply(LOCAL_REPLIES.overloaded[reason], target);
      return;
    }
    retry.sent();
    this.attempt = new UpstreamAttempt(this, target, backend, a === ADMIT_TRIAL);
    this.dispatch(this.attempt);
  }
}
