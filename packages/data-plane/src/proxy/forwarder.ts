/**
 * The request path: route match → pick → forward → account, in a straight line. It reads the
 * routing table through one reference (swapped whole by the snapshot applier), never waits on
 * disk or network before dispatching, and drives the upstream client (upstream/upstream.ts)
 * through its handler interface directly: the response arrives as raw header strings and body
 * chunks that go straight into the ProxyResponse, with the client's pause/resume carrying
 * back-pressure from the client to the backend. Per request it allocates the upstream header
 * array, the dispatch options and one handler object; listeners are shared functions that find
 * their call through a symbol.
 *
 * Resilience (resilience/*): node-wide shedding and the route's rate limit come before the pick;
 * circuit-breaker limits are a few comparisons after it. Retries cost nothing until an attempt
 * fails: only then are the method, the body, the budget and another backend looked at, and the
 * same handler object runs the next attempt.
 */
import { EMPTY_PICK_CONTEXT } from '../balancer/balancer.js';
import { rawHeaderNumber, recordLatency, recordLoad, requestEnded, requestStarted, type BackendRuntime } from '../balancer/host.js';
import { RequestPickContext } from '../balancer/request-context.js';
import { classifyUpstreamError } from '../errors.js';
import { UPSTREAM_ERRORS, type UpstreamHandler } from '../upstream/upstream.js';
import type { DataPlaneMetrics, RequestStats } from '../metrics.js';
import { withinLimits, type OverloadReason } from '../resilience/circuit-breaker.js';
import { AccessLog, type UpstreamSummary } from '../access-log/access-log.js';
import type { LoadShedder } from '../resilience/load-shedder.js';
import { RequestIds } from '../resilience/request-id.js';
import type { RetryBudget } from '../resilience/retry-budget.js';
import { backoffDelay, FailureKind, requestRetryable, statusFailure } from '../resilience/retry-policy.js';
import { systemRandom, type Random } from '../runtime/clock.js';
import { normalizeHost, pickBackend, type CompiledBackend, type CompiledRoute, type RouteTarget, type RoutingTable } from '../routing/routing-table.js';
import type { ProxyRequest, ProxyResponse } from './exchange.js';
import { filterResponseHeaders, scanRequestHeaders, type RequestHeaderScan } from './hop-by-hop.js';

/** Where the forwarder reads the current table; the applier swaps `current` in one assignment. */
export interface TableSource {
  readonly current: RoutingTable | undefined;
}

interface LocalReply {
  readonly status: number;
  /** The `x-lb-error` value, also written to the access log. */
  readonly code: string;
  readonly headers: readonly string[];
  readonly body: Buffer;
}

function localReply(status: number, code: string, text: string, extra: readonly string[] = []): LocalReply {
  const body = Buffer.from(`${text}\n`);
  return { status, code, body, headers: ['content-type', 'text/plain; charset=utf-8', 'content-length', String(body.length), 'x-lb-error', code, ...extra] };
}

/** The short answers the proxy gives itself; `x-lb-error` tells them apart from a backend's own. */
export const LOCAL_REPLIES = {
  noConfig: localReply(503, 'no_config', 'no configuration applied yet'),
  noRoute: localReply(404, 'no_route', 'no route matches this request'),
  noBackend: localReply(503, 'no_backend', 'no backend available'),
  connectFailed: localReply(502, 'upstream_connect', 'upstream connect failed'),
  badGateway: localReply(502, 'upstream_error', 'upstream error'),
  timeout: localReply(504, 'upstream_timeout', 'upstream timed out'),
  badRequest: localReply(400, 'bad_request', 'bad request'),
  /** Over a circuit-breaker limit or shed; `x-lb-overloaded` says which limit. */
  overloaded: {
    backend: localReply(503, 'overloaded', 'backend over its limits', ['x-lb-overloaded', 'backend']),
    pool: localReply(503, 'overloaded', 'pool over its limits', ['x-lb-overloaded', 'pool']),
    'circuit-open': localReply(503, 'overloaded', 'backend circuit open', ['x-lb-overloaded', 'circuit-open']),
    node: localReply(503, 'overloaded', 'data plane overloaded', ['x-lb-overloaded', 'node', 'retry-after', '1']),
  } satisfies Record<OverloadReason, LocalReply>,
} as const;

function sendLocal(res: ProxyResponse, reply: LocalReply): void {
  (res as TaggedResponse)[kLocal] = reply.code;
  res.writeHead(reply.status, reply.headers as string[]);
  res.end(reply.body);
}

function sendRateLimited(res: ProxyResponse, waitMs: number): void {
  (res as TaggedResponse)[kLocal] = 'rate_limited';
  const body = 'rate limit exceeded\n';
  res.writeHead(429, [
    'content-type',
    'text/plain; charset=utf-8',
    'content-length',
    String(body.length),
    'x-lb-error',
    'rate_limited',
    'retry-after',
    String(Math.max(1, Math.ceil(waitMs / 1000))),
  ]);
  res.end(body);
}

const kCall = Symbol('lb.proxyCall');
// Set only while the access log is on: what it needs once the response is over.
const kLog = Symbol('lb.accessLog');
const kStart = Symbol('lb.startedAt');
const kLocal = Symbol('lb.localReply');
const kRequestId = Symbol('lb.requestId');
type TaggedResponse = ProxyResponse & {
  [kCall]?: ProxyCall;
  [kLog]?: AccessLog;
  [kStart]?: number;
  [kLocal]?: string;
  [kRequestId]?: string;
};

/** 'close' listener of every response while the access log is on: one line per request. */
function onAccessClose(this: TaggedResponse): void {
  const log = this[kLog]!;
  const req = this.req;
  log.write(AccessLog.entry(req, this, this[kStart]!, performance.now(), this[kCall]?.summary(), this[kRequestId], this[kLocal]));
}

class ClientAbortedError extends Error {
  readonly code = 'LB_CLIENT_ABORTED';
}

/**
 * The request itself could not be sent — undici refused a header, or the client's body broke
 * off: the client's fault, not the backend's.
 */
function isRequestRefused(err: Error): boolean {
  const code = (err as { code?: string }).code;
  return code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED' || code === UPSTREAM_ERRORS.REQUEST_BODY;
}

function onResponseClose(this: TaggedResponse): void {
  const call = this[kCall];
  if (call !== undefined && !call.done) call.clientGone();
}

function onResponseDrain(this: TaggedResponse): void {
  this[kCall]?.resume?.();
}

function dispatchCall(call: ProxyCall): void {
  if (call.done) return;
  call.dispatchFirst();
}

function runRetry(call: ProxyCall): void {
  call.retryNow();
}

// Admission answers: 0 and 1 admit (1: as a half-open breaker's trial), the others name the limit.
const ADMIT = 0;
const ADMIT_TRIAL = 1;
const OVER_POOL = 2;
const OVER_BACKEND = 3;
const OVER_OPEN = 4;
const OVERLOAD_REASONS: readonly (Exclude<OverloadReason, 'node'> | undefined)[] = [undefined, undefined, 'pool', 'backend', 'circuit-open'];

/** Circuit-breaker admission of one more request to `backend` of `target`'s pool. */
function admission(target: RouteTarget, rt: BackendRuntime): number {
  const r = target.pool.resilience;
  if (!withinLimits(r.load, r.limits)) return OVER_POOL;
  if (!withinLimits(rt, r.backendLimits)) return OVER_BACKEND;
  const breaker = rt.breaker;
  if (breaker === null) return ADMIT;
  const a = breaker.admit();
  return a === 1 ? ADMIT : a === 2 ? ADMIT_TRIAL : OVER_OPEN;
}

/** A retry's backend: not one already tried when another is available, within limits, breaker closed. */
function chooseRetryBackend(route: CompiledRoute, out: { target: RouteTarget | undefined }, tried: readonly BackendRuntime[]): CompiledBackend | undefined {
  let fallback: CompiledBackend | undefined;
  let fallbackTarget: RouteTarget | undefined;
  let tries = 2;
  for (const t of route.targets) tries += t.pool.balancer.size;
  if (tries > 32) tries = 32;
  for (let i = 0; i < tries; i++) {
    const b = pickBackend(route, out, EMPTY_PICK_CONTEXT, true);
    const target = out.target;
    if (b === undefined || target === undefined || b.upstream === undefined) return undefined;
    const rt = b.runtime;
    const r = target.pool.resilience;
    if (!withinLimits(r.load, r.limits) || !withinLimits(rt, r.backendLimits) || rt.breaker?.isOpen) continue;
    if (!tried.includes(rt)) return b;
    if (fallback === undefined) {
      fallback = b;
      fallbackTarget = target;
    }
  }
  out.target = fallbackTarget;
  return fallback;
}

/**
 * One client request: the upstream handler of each attempt, writing into the client's response.
 * Attempts run one after another on the same object.
 */
class ProxyCall implements UpstreamHandler {
  done = false;
  resume: (() => void) | null = null;
  private abort: ((err?: Error) => void) | null = null;
  private gone = false;
  private status = 0;
  private drainHooked = false;
  /** performance.now() at dispatch, for pools whose algorithm learns from latency. */
  private startedAt = 0;
  /** 1 for the first attempt. */
  private attempt = 1;
  /** The current attempt reached a connection (it no longer counts as pending). */
  private connected = false;
  /** The current attempt is a half-open breaker's trial. */
  private trial: boolean;
  /** The current attempt's response is being thrown away: a retry follows. */
  private discarding = false;
  /** Backends tried so far (from the first retry on). */
  private tried: BackendRuntime[] | null = null;
  /** Index of the X-Retry-Count value in `headers` (0: not added yet). */
  private retryHeaderAt = 0;
  /** Where the retry goes, chosen when it was decided; taken over once the failed attempt is accounted. */
  private nextBackend: CompiledBackend | undefined = undefined;
  private nextTarget: RouteTarget | undefined = undefined;
  /** The budget the pending retry was withdrawn from (the failed attempt's pool), to refund it if unsent. */
  private retryBudget: RetryBudget | undefined = undefined;

  constructor(
    private readonly req: ProxyRequest,
    private readonly res: TaggedResponse,
    private readonly forwarder: Forwarder,
    private readonly route: CompiledRoute,
    private target: RouteTarget,
    private backend: CompiledBackend,
    private readonly headers: string[],
    private readonly hasBody: boolean,
    private setCookie: string | undefined,
    trial: boolean,
  ) {
    this.trial = trial;
  }

  /** For the access log: where the request went, and how many retries it took. */
  summary(): UpstreamSummary {
    return { route: this.route.name, pool: this.target.pool.name, backend: this.backend.id, retries: this.attempt - 1 };
  }

  /** The first attempt, sent late (chunked bodies): unless the client is gone or its request broke already. */
  dispatchFirst(): void {
    // The client's socket is destroyed at once when the rest of its request fails to parse (a
    // malformed chunk); its 'close' events only come after this check, and a pooled upstream
    // connection would have the head on the wire by then.
    if (this.gone || this.res.destroyed || this.req.destroyed || this.req.socket.destroyed) {
      // Admitted but never sent: a half-open breaker's trial slot goes back.
      this.backend.runtime.breaker?.release(this.trial);
      this.finish();
      this.target.stats.byClass[0]!++;
      return;
    }
    this.dispatch();
  }

  /** Sends the current attempt to `this.backend`. */
  dispatch(): void {
    const backend = this.backend;
    const rt = backend.runtime;
    const load = this.target.pool.resilience.load;
    requestStarted(rt);
    rt.pending++;
    load.active++;
    load.pending++;
    this.connected = false;
    this.abort = null;
    if (this.target.pool.feedback !== undefined) this.startedAt = performance.now();
    const requestMs = this.target.policy.requestMs;
    const req = this.req;
    backend.upstream!.dispatch(
      { path: req.url!, method: req.method!, headers: this.headers, body: this.hasBody ? req : null, headersTimeout: requestMs, bodyTimeout: requestMs },
      this,
    );
  }

  /**
   * The current attempt is over: give back what dispatch() took, and tell the breaker how it went
   * (`verdict` false: the attempt says nothing about the backend — the client left or its request
   * was refused — so it counts neither way).
   */
  private endAttempt(ok: boolean, verdict = true): void {
    const rt = this.backend.runtime;
    const load = this.target.pool.resilience.load;
    if (!this.connected) {
      rt.pending--;
      load.pending--;
    }
    load.active--;
    requestEnded(rt);
    const breaker = rt.breaker;
    if (breaker === null) return;
    if (verdict) breaker.record(ok, this.trial);
    else breaker.release(this.trial);
  }

  /** The request is answered (or abandoned) for good. */
  private finish(): void {
    this.done = true;
    this.forwarder.metrics.inFlight--;
  }

  clientGone(): void {
    this.gone = true;
    // Before onConnect the request is still queued in the pool; onConnect aborts it.
    if (this.abort !== null) this.abort(new ClientAbortedError('client closed the connection'));
  }

  onConnect(abort: (err?: Error) => void): void {
    if (!this.connected) {
      this.connected = true;
      this.backend.runtime.pending--;
      this.target.pool.resilience.load.pending--;
    }
    if (this.gone) abort(new ClientAbortedError('client closed the connection'));
    else this.abort = abort;
  }

  onHeaders(statusCode: number, rawHeaders: readonly string[], resume: () => void, statusText: string): boolean {
    // 1xx: Node's server already answered the client's `Expect: 100-continue` itself.
    if (statusCode < 200) return true;
    this.status = statusCode;
    if (statusCode >= 500 && this.mayRetry(statusFailure(statusCode))) {
      // Read the rest of the answer and drop it (keeps the connection), then try elsewhere.
      this.discarding = true;
      return true;
    }
    this.resume = resume;
    const headers = filterResponseHeaders(rawHeaders);
    if (this.setCookie !== undefined) headers.push('set-cookie', this.setCookie);
    const fb = this.target.pool.feedback;
    if (fb !== undefined) {
      const now = performance.now();
      const rt = this.backend.runtime;
      if (fb.latencyDecayMs !== undefined) recordLatency(rt, now - this.startedAt, now, fb.latencyDecayMs);
      if (fb.loadHeader !== undefined) recordLoad(rt, rawHeaderNumber(rawHeaders, fb.loadHeader), now, fb.loadDecayMs);
    }
    const res = this.res;
    try {
      if (statusText !== '') res.writeHead(statusCode, statusText, headers);
      else res.writeHead(statusCode, headers);
    } catch (err) {
      // Node refuses a header the client accepted: treat it as a bad answer from the backend.
      this.abort?.(err as Error);
      return false;
    }
    return true;
  }

  onData(chunk: Buffer, release?: () => void): boolean {
    if (this.discarding) {
      release?.();
      return true;
    }
    const res = this.res;
    if (res.write(chunk, release)) return true;
    if (!this.drainHooked) {
      this.drainHooked = true;
      res.on('drain', onResponseDrain);
    }
    return false;
  }

  onComplete(): void {
    const status = this.status;
    this.endAttempt(status < 500);
    // Passive health: one flag check when the pool has no outlierDetection.
    const outlier = this.backend.runtime.outlier;
    if (outlier !== null) outlier.onStatus(status);
    if (this.discarding) return this.scheduleRetry();
    this.finish();
    this.target.stats.count(status);
    this.res.end();
  }

  onError(err: Error): void {
    if (this.done) return;
    const res = this.res;
    // A client that hangs up, or a request that cannot be sent, is not the backend failing: counting it
    // would let impatient or hostile clients open the breakers of healthy backends.
    this.endAttempt(false, !(this.gone || res.destroyed || isRequestRefused(err)));
    if (this.gone || res.destroyed) {
      this.finish();
      this.target.stats.byClass[0]!++;
      return;
    }
    const refused = isRequestRefused(err);
    // Connect errors, resets, timeouts: gateway errors for outlier detection (not the client's refusals).
    const outlier = this.backend.runtime.outlier;
    if (outlier !== null && !refused) outlier.onGatewayError();
    const errors = this.target.pool.errors;
    if (this.discarding) {
      // The failed answer was being dropped for a retry already decided.
      errors.byKind[classifyUpstreamError(err)]++;
      return this.scheduleRetry();
    }
    if (res.headersSent) {
      // The status is out; all that is left is to cut the response short so the client sees it broke.
      this.finish();
      errors.byKind[classifyUpstreamError(err)]++;
      this.target.stats.count(this.status);
      res.destroy();
      return;
    }
    let reply: LocalReply;
    if (refused) reply = LOCAL_REPLIES.badRequest;
    else {
      const kind = classifyUpstreamError(err);
      errors.byKind[kind]++;
      if ((kind === 'connect' && this.mayRetry(FailureKind.ConnectFailure)) || (kind === 'reset' && this.mayRetry(FailureKind.Reset)))
        return this.scheduleRetry();
      reply = kind === 'timeout' ? LOCAL_REPLIES.timeout : kind === 'connect' ? LOCAL_REPLIES.connectFailed : LOCAL_REPLIES.badGateway;
    }
    this.finish();
    this.target.stats.count(reply.status);
    sendLocal(res, reply);
  }

  /**
   * Whether the failure `kind` of the current attempt is retried: the policy covers it, tries are
   * left, the request may be sent again (method or idempotency key, body not streamed), another
   * backend takes it, and the budget allows. On true the next backend is chosen already.
   */
  private mayRetry(kind: number): boolean {
    const policy = this.target.policy.retry;
    if ((policy.on & kind) === 0 || this.attempt >= policy.attempts || this.gone) return false;
    const req = this.req;
    // A body that started streaming to a backend cannot be sent again.
    if (this.hasBody && (req.readableDidRead || req.destroyed)) return false;
    if (!requestRetryable(policy, req.method, req.rawHeaders)) return false;
    this.tried ??= [];
    const tried = this.tried;
    if (!tried.includes(this.backend.runtime)) tried.push(this.backend.runtime);
    const picked = retryPicked;
    const next = chooseRetryBackend(this.route, picked, tried);
    const target = picked.target;
    if (next === undefined || target === undefined) return false;
    const pool = this.target.pool.resilience;
    if (!pool.budget.tryWithdraw()) {
      pool.stats.budgetExhausted++;
      return false;
    }
    this.nextBackend = next;
    this.nextTarget = target;
    this.retryBudget = pool.budget;
    return true;
  }

  private scheduleRetry(): void {
    this.discarding = false;
    this.status = 0;
    this.backend = this.nextBackend!;
    this.target = this.nextTarget!;
    this.nextBackend = undefined;
    this.nextTarget = undefined;
    const delay = backoffDelay(this.target.policy.retry, this.attempt, this.forwarder.random);
    this.attempt++;
    if (delay > 0) setTimeout(runRetry, delay, this);
    else setImmediate(runRetry, this);
  }

  /** After the backoff: send the next attempt (the client may have left meanwhile). */
  retryNow(): void {
    const budget = this.retryBudget!;
    this.retryBudget = undefined;
    if (this.gone || this.res.destroyed) {
      // Never sent: the withdrawal goes back so that clients who leave do not spend the budget.
      budget.refund();
      this.finish();
      this.target.stats.byClass[0]!++;
      return;
    }
    const retries = String(this.attempt - 1);
    const headers = this.headers;
    if (this.retryHeaderAt === 0) {
      headers.push('x-retry-count', retries);
      this.retryHeaderAt = headers.length - 1;
    } else headers[this.retryHeaderAt] = retries;
    // The failed backend's sticky pin is not worth keeping.
    this.setCookie = undefined;
    this.target.pool.resilience.stats.retries++;
    // The breaker is asked only now: trials are for requests that will be sent.
    const a = admission(this.target, this.backend.runtime);
    if (a > ADMIT_TRIAL) {
      budget.refund();
      this.target.pool.resilience.stats.overloaded[OVERLOAD_REASONS[a]!]++;
      this.finish();
      const reply = LOCAL_REPLIES.overloaded[OVERLOAD_REASONS[a]!];
      this.target.stats.count(reply.status);
      sendLocal(this.res, reply);
      return;
    }
    this.trial = a === ADMIT_TRIAL;
    this.dispatch();
  }
}

// Scratch space for the synchronous part of a request; never held across an await.
const scan: RequestHeaderScan = {
  headers: [],
  host: undefined,
  forwardedFor: undefined,
  hasBody: false,
  hasRequestId: false,
  duplicateHost: false,
  badTransferEncoding: false,
  chunked: false,
};
const picked: { target: RouteTarget | undefined } = { target: undefined };
const retryPicked: { target: RouteTarget | undefined } = { target: undefined };
const pickCtx = new RequestPickContext();

export interface ForwarderOptions {
  /** Node-wide admission (concurrency cap, event-loop delay); absent: none. */
  shedder?: LoadShedder | undefined;
  /** Backoff jitter; default Math.random. */
  random?: Random;
  /** One line per request when set; off by default. */
  accessLog?: AccessLog | undefined;
}

export class Forwarder {
  private readonly noRoute: RequestStats;
  private readonly ids = new RequestIds();
  shedder: LoadShedder | undefined;
  accessLog: AccessLog | undefined;
  readonly random: Random;

  constructor(
    private readonly tables: TableSource,
    readonly metrics: DataPlaneMetrics,
    options: ForwarderOptions = {},
  ) {
    this.noRoute = metrics.requestStats('', '');
    this.shedder = options.shedder;
    this.accessLog = options.accessLog;
    this.random = options.random ?? systemRandom;
  }

  /** The 'request' listener of either client-side server (exchange.ts). */
  readonly handle = (req: ProxyRequest, res: ProxyResponse): void => {
    const log = this.accessLog;
    if (log !== undefined) {
      const tagged = res as TaggedResponse;
      tagged[kLog] = log;
      tagged[kStart] = performance.now();
      res.once('close', onAccessClose);
    }
    const table = this.tables.current;
    if (table === undefined) {
      this.noRoute.byClass[5]!++;
      return sendLocal(res, LOCAL_REPLIES.noConfig);
    }
    const metrics = this.metrics;
    const shedder = this.shedder;
    if (shedder !== undefined && !shedder.admit(metrics.inFlight)) {
      metrics.resilience.shed++;
      this.noRoute.byClass[5]!++;
      return sendLocal(res, LOCAL_REPLIES.overloaded.node);
    }
    const url = req.url ?? '';
    // Origin-form only: an absolute-form target (`GET http://…`) is a forward-proxy request.
    if (url.charCodeAt(0) !== 47 /* / */) {
      this.noRoute.byClass[4]!++;
      return sendLocal(res, LOCAL_REPLIES.badRequest);
    }
    scanRequestHeaders(req.rawHeaders, scan);
    // What Node's strict parser lets through but a backend might read differently: two Hosts, a
    // body without a knowable end, HTTP/0.9.
    if (scan.duplicateHost || scan.badTransferEncoding || req.httpVersionMajor !== 1) {
      this.noRoute.byClass[4]!++;
      return sendLocal(res, LOCAL_REPLIES.badRequest);
    }
    const host = scan.host;
    const route = table.match(host === undefined ? undefined : normalizeHost(host), url);
    if (route === undefined) {
      this.noRoute.byClass[4]!++;
      return sendLocal(res, LOCAL_REPLIES.noRoute);
    }
    const limiter = route.rateLimiter;
    if (limiter !== undefined) {
      let key: string | undefined;
      if (limiter.header !== undefined) {
        pickCtx.reset(req.rawHeaders, url, req.socket);
        key = pickCtx.header(limiter.header);
      }
      const wait = limiter.take(key ?? req.socket.remoteAddress ?? '', performance.now());
      if (wait > 0) {
        route.rateLimited.n++;
        route.noBackend.byClass[4]!++;
        return sendRateLimited(res, wait);
      }
    }
    pickCtx.reset(req.rawHeaders, url, req.socket);
    let backend = pickBackend(route, picked, pickCtx);
    let target = picked.target;
    if (backend === undefined || target === undefined || backend.upstream === undefined) {
      route.noBackend.byClass[5]!++;
      return sendLocal(res, LOCAL_REPLIES.noBackend);
    }
    let a = admission(target, backend.runtime);
    if (a > ADMIT_TRIAL) {
      // Over a limit: another backend of the route may still take it.
      let tries = target.pool.balancer.size;
      if (tries > 8) tries = 8;
      while (a > ADMIT_TRIAL && --tries > 0) {
        // A rejected sticky pick's cookie must not go out with a backend of another pool.
        pickCtx.setCookie = undefined;
        const other = pickBackend(route, picked, pickCtx);
        if (other === undefined || picked.target === undefined || other.upstream === undefined) break;
        const r = admission(picked.target, other.runtime);
        if (r <= ADMIT_TRIAL) {
          backend = other;
          target = picked.target;
        }
        a = r;
      }
      if (a > ADMIT_TRIAL) {
        const reason = OVERLOAD_REASONS[a]!;
        target.pool.resilience.stats.overloaded[reason]++;
        target.stats.byClass[5]!++;
        return sendLocal(res, LOCAL_REPLIES.overloaded[reason]);
      }
    }

    const headers = scan.headers;
    if (host !== undefined) headers.push('host', host, 'x-forwarded-host', host);
    const ip = req.socket.remoteAddress;
    const forwardedFor = scan.forwardedFor;
    if (ip !== undefined) headers.push('x-forwarded-for', forwardedFor === undefined ? ip : `${forwardedFor}, ${ip}`);
    else if (forwardedFor !== undefined) headers.push('x-forwarded-for', forwardedFor);
    headers.push('x-forwarded-proto', 'http');
    if (!scan.hasRequestId) {
      const id = this.ids.next();
      headers.push('x-request-id', id);
      if (log !== undefined) (res as TaggedResponse)[kRequestId] = id;
    }

    target.pool.resilience.budget.requests++;
    const call = new ProxyCall(req, res, this, route, target, backend, headers, scan.hasBody, pickCtx.setCookie, a === ADMIT_TRIAL);
    (res as TaggedResponse)[kCall] = call;
    res.on('close', onResponseClose);
    metrics.inFlight++;
    // A chunked body is parsed as it arrives: wait until the parser has seen the rest of this
    // packet, so a malformed chunk sent along with the head fails the request before anything
    // reaches a backend.
    if (scan.chunked) setImmediate(dispatchCall, call);
    else call.dispatch();
  };
}
