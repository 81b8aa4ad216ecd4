/**
 * The request path: route match → pick → forward → account, in a straight line. It reads the
 * routing table through one reference (swapped whole by the snapshot applier), never waits on
 * disk or network before dispatching, and uses undici's dispatch handler API directly: the
 * response arrives as raw header buffers and body chunks that go straight into the
 * ServerResponse, with undici's pause/resume carrying back-pressure from the client to the
 * backend. Per request it allocates the upstream header array, the dispatch options and one
 * handler object; listeners are shared functions that find their call through a symbol.
 *
 * undici 7 runs the legacy handler methods (onConnect/onHeaders/onData/onComplete/onError)
 * natively; the newer onRequestStart/onResponseStart interface goes through an adapter that
 * parses every response header into an object, so this file keeps to the legacy one.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { PoolFeedback } from '../balancer/factory.js';
import { rawHeaderNumber, recordLatency, recordLoad, requestEnded, requestStarted, type BackendRuntime } from '../balancer/host.js';
import { RequestPickContext } from '../balancer/request-context.js';
import { classifyUpstreamError } from '../errors.js';
import type { DataPlaneMetrics, RequestStats, UpstreamErrorStats } from '../metrics.js';
import { normalizeHost, pickBackend, type RouteTarget, type RoutingTable } from '../routing/routing-table.js';
import { filterResponseHeaders, scanRequestHeaders, type RequestHeaderScan } from './hop-by-hop.js';

/** Where the forwarder reads the current table; the applier swaps `current` in one assignment. */
export interface TableSource {
  readonly current: RoutingTable | undefined;
}

interface LocalReply {
  readonly status: number;
  readonly headers: readonly string[];
  readonly body: Buffer;
}

function localReply(status: number, code: string, text: string): LocalReply {
  const body = Buffer.from(`${text}\n`);
  return { status, body, headers: ['content-type', 'text/plain; charset=utf-8', 'content-length', String(body.length), 'x-lb-error', code] };
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
} as const;

function sendLocal(res: ServerResponse, reply: LocalReply): void {
  res.writeHead(reply.status, reply.headers as string[]);
  res.end(reply.body);
}

const kCall = Symbol('lb.proxyCall');
type TaggedResponse = ServerResponse & { [kCall]?: ProxyCall };

class ClientAbortedError extends Error {
  readonly code = 'LB_CLIENT_ABORTED';
}

/** undici refused the request itself (a header it will not send): the client's fault, not the backend's. */
function isRequestRefused(err: Error): boolean {
  const code = (err as { code?: string }).code;
  return code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED';
}

function onResponseClose(this: TaggedResponse): void {
  const call = this[kCall];
  if (call !== undefined && !call.done) call.clientGone();
}

function onResponseDrain(this: TaggedResponse): void {
  this[kCall]?.resume?.();
}

/** One forwarded request: undici's handler, writing into the client's response. */
class ProxyCall implements Dispatcher.DispatchHandler {
  done = false;
  resume: (() => void) | null = null;
  private abort: ((err?: Error) => void) | null = null;
  private gone = false;
  private status = 0;
  private drainHooked = false;
  /** performance.now() at dispatch, for pools whose algorithm learns from latency. */
  private readonly startedAt: number;

  constructor(
    private readonly res: TaggedResponse,
    private readonly stats: RequestStats,
    private readonly errors: UpstreamErrorStats,
    private readonly metrics: DataPlaneMetrics,
    private readonly runtime: BackendRuntime,
    private readonly feedback: PoolFeedback | undefined,
    private readonly setCookie: string | undefined,
  ) {
    this.startedAt = feedback === undefined ? 0 : performance.now();
  }

  clientGone(): void {
    this.gone = true;
    // Before onConnect the request is still queued in the pool; onConnect aborts it.
    if (this.abort !== null) this.abort(new ClientAbortedError('client closed the connection'));
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.gone) abort(new ClientAbortedError('client closed the connection'));
    else this.abort = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    // 1xx: Node's server already answered the client's `Expect: 100-continue` itself.
    if (statusCode < 200) return true;
    this.status = statusCode;
    this.resume = resume;
    const headers = filterResponseHeaders(rawHeaders);
    if (this.setCookie !== undefined) headers.push('set-cookie', this.setCookie);
    const fb = this.feedback;
    if (fb !== undefined) {
      const now = performance.now();
      if (fb.latencyDecayMs !== undefined) recordLatency(this.runtime, now - this.startedAt, now, fb.latencyDecayMs);
      if (fb.loadHeader !== undefined) recordLoad(this.runtime, rawHeaderNumber(rawHeaders, fb.loadHeader), now, fb.loadDecayMs);
    }
    const res = this.res;
    try {
      if (statusText !== '') res.writeHead(statusCode, statusText, headers);
      else res.writeHead(statusCode, headers);
    } catch (err) {
      // Node refuses a header undici accepted: treat it as a bad answer from the backend.
      this.abort?.(err as Error);
      return false;
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    const res = this.res;
    if (res.write(chunk)) return true;
    if (!this.drainHooked) {
      this.drainHooked = true;
      res.on('drain', onResponseDrain);
    }
    return false;
  }

  onComplete(): void {
    this.done = true;
    this.metrics.inFlight--;
    requestEnded(this.runtime);
    // Passive health: one flag check when the pool has no outlierDetection.
    const outlier = this.runtime.outlier;
    if (outlier !== null) outlier.onStatus(this.status);
    this.stats.count(this.status);
    this.res.end();
  }

  onError(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.metrics.inFlight--;
    requestEnded(this.runtime);
    const res = this.res;
    if (this.gone || res.destroyed) {
      this.stats.byClass[0]!++;
      return;
    }
    // Connect errors, resets, timeouts: gateway errors for outlier detection (not the client's refusals).
    const outlier = this.runtime.outlier;
    if (outlier !== null && !isRequestRefused(err)) outlier.onGatewayError();
    if (res.headersSent) {
      // The status is out; all that is left is to cut the response short so the client sees it broke.
      this.errors.byKind[classifyUpstreamError(err)]++;
      this.stats.count(this.status);
      res.destroy();
      return;
    }
    let reply: LocalReply;
    if (isRequestRefused(err)) reply = LOCAL_REPLIES.badRequest;
    else {
      const kind = classifyUpstreamError(err);
      this.errors.byKind[kind]++;
      reply = kind === 'timeout' ? LOCAL_REPLIES.timeout : kind === 'connect' ? LOCAL_REPLIES.connectFailed : LOCAL_REPLIES.badGateway;
    }
    this.stats.count(reply.status);
    sendLocal(res, reply);
  }
}

// Scratch space for the synchronous part of a request; never held across an await.
const scan: RequestHeaderScan = { headers: [], host: undefined, forwardedFor: undefined, hasBody: false };
const picked: { target: RouteTarget | undefined } = { target: undefined };
const pickCtx = new RequestPickContext();

export class Forwarder {
  private readonly noRoute: RequestStats;

  constructor(private readonly tables: TableSource, private readonly metrics: DataPlaneMetrics) {
    this.noRoute = metrics.requestStats('', '');
  }

  /** The node:http 'request' listener. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const table = this.tables.current;
    if (table === undefined) {
      this.noRoute.byClass[5]!++;
      return sendLocal(res, LOCAL_REPLIES.noConfig);
    }
    const url = req.url ?? '';
    // Origin-form only: an absolute-form target (`GET http://…`) is a forward-proxy request.
    if (url.charCodeAt(0) !== 47 /* / */) {
      this.noRoute.byClass[4]!++;
      return sendLocal(res, LOCAL_REPLIES.badRequest);
    }
    scanRequestHeaders(req.rawHeaders, scan);
    const host = scan.host;
    const route = table.match(host === undefined ? undefined : normalizeHost(host), url);
    if (route === undefined) {
      this.noRoute.byClass[4]!++;
      return sendLocal(res, LOCAL_REPLIES.noRoute);
    }
    pickCtx.reset(req.rawHeaders, url, req.socket);
    const backend = pickBackend(route, picked, pickCtx);
    const target = picked.target;
    if (backend === undefined || target === undefined || backend.upstream === undefined) {
      route.noBackend.byClass[5]!++;
      return sendLocal(res, LOCAL_REPLIES.noBackend);
    }

    const headers = scan.headers;
    if (host !== undefined) headers.push('host', host, 'x-forwarded-host', host);
    const ip = req.socket.remoteAddress;
    const forwardedFor = scan.forwardedFor;
    if (ip !== undefined) headers.push('x-forwarded-for', forwardedFor === undefined ? ip : `${forwardedFor}, ${ip}`);
    else if (forwardedFor !== undefined) headers.push('x-forwarded-for', forwardedFor);
    headers.push('x-forwarded-proto', 'http');

    const call = new ProxyCall(res, target.stats, target.pool.errors, this.metrics, backend.runtime, target.pool.feedback, pickCtx.setCookie);
    (res as TaggedResponse)[kCall] = call;
    res.on('close', onResponseClose);
    this.metrics.inFlight++;
    requestStarted(backend.runtime);
    backend.upstream.dispatch({ path: url, method: req.method as Dispatcher.HttpMethod, headers, body: scan.hasBody ? req : null }, call);
  };
}
