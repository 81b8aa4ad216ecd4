/**
 * The request path's first half: admit → check the head → match a route → rate-limit → pick →
 * breaker admission, in a straight line, then hand the request to a ProxyCall (proxy-call.ts),
 * which forwards and retries. It reads the routing table through one reference (swapped whole by
 * the snapshot applier) and never waits on disk or network before dispatching. Per request it
 * allocates the upstream header array, the call and its first attempt.
 *
 * What the client-side parser lets through but a backend might read differently is refused here,
 * before anything is sent: two Hosts, a Host that is not a host name (host-header.ts), a body
 * without a knowable end (400) or with a transfer coding the proxy would lose (501), more header
 * fields than maxHeaders (431), HTTP/0.9, absolute-form targets. Resilience (resilience/*):
 * node-wide shedding and the route's rate limit come before the pick; circuit-breaker limits are
 * a few comparisons after it.
 */
import { DEFAULT_LISTENER, type ListenerProtocol } from '@lb/shared';
import { AccessLog } from '../access-log/access-log.js';
import { RequestPickContext } from '../balancer/request-context.js';
import type { DataPlaneMetrics, RequestStats } from '../metrics.js';
import type { LoadShedder } from '../resilience/load-shedder.js';
import { RequestIds } from '../resilience/request-id.js';
import { systemRandom, type Random } from '../runtime/clock.js';
import { normalizeHost, pickBackend, type RouteTarget } from '../routing/routing-table.js';
import { applyHeaderRules } from '../routing/header-rules.js';
import { redirectLocation } from '../routing/redirect.js';
import type { TableSource } from '../routing/table-source.js';
import { ADMIT_TRIAL, admission, OVERLOAD_REASONS } from './admission.js';
import type { ProxyRequest, ProxyResponse } from './exchange.js';
import { isWebSocketUpgrade, scanRequestHeaders, TRANSFER_CODING, type RequestHeaderScan, type UnderscoreHeaders } from './hop-by-hop.js';
import { isValidHostHeader } from './host-header.js';
import { forwardedElement } from './forwarded-header.js';
import { LOCAL_REPLIES, localReplyCode, sendHttpsRedirect, sendLocal, sendRateLimited, sendRedirect } from './local-replies.js';
import { callOf, ProxyCall } from './proxy-call.js';
import { type TunnelContext, TunnelCall } from './tunnel-call.js';
import { TunnelRegistry } from './tunnel-registry.js';

// Set only while the access log is on: what it needs once the response is over.
const kStart = Symbol('lb.startedAt');
const kRequestId = Symbol('lb.requestId');
const kLog = Symbol('lb.accessLog');
type LoggedResponse = ProxyResponse & { [kStart]?: number; [kRequestId]?: string; [kLog]?: AccessLog };

/** 'close' listener of every response while the access log is on: one line per request. */
function onAccessClose(this: LoggedResponse): void {
  this[kLog]!.write(AccessLog.entry(this.req, this, this[kStart]!, performance.now(), callOf(this)?.summary(), this[kRequestId], localReplyCode(this)));
}

// Scratch space for the synchronous part of a request; never held across an await.
const scan: RequestHeaderScan = {
  headers: [],
  host: undefined,
  forwardedFor: undefined,
  forwarded: undefined,
  hasBody: false,
  hasRequestId: false,
  duplicateHost: false,
  chunked: false,
  transferCoding: TRANSFER_CODING.NONE,
  upgrade: undefined,
};
const picked: { target: RouteTarget | undefined } = { target: undefined };
const pickCtx = new RequestPickContext();

/** Most request header fields forwarded by default; HAProxy's limit is 101 (tune.http.maxhdr). */
export const DEFAULT_MAX_HEADERS = 100;

/** The listener a forwarder serves: the routes it may match, and what X-Forwarded-Proto/-Port say. */
export interface ListenerContext {
  readonly name: string;
  readonly protocol: ListenerProtocol;
}

export interface ForwarderOptions {
  /** Default: the `--listen` listener (DEFAULT_LISTENER, plain HTTP). */
  listener?: ListenerContext;
  /** Node-wide admission (concurrency cap, event-loop delay); absent: none. */
  shedder?: LoadShedder | undefined;
  /** Backoff jitter; default Math.random. */
  random?: Random;
  /** One line per request when set; off by default. */
  accessLog?: AccessLog | undefined;
  /** Requests with more header fields get 431. Default DEFAULT_MAX_HEADERS. */
  maxHeaders?: number;
  /** Request header names with `_`: dropped (default, as nginx) or forwarded. */
  underscoreHeaders?: UnderscoreHeaders;
}

export class Forwarder implements TunnelContext {
  private readonly noRoute: RequestStats;
  private readonly ids = new RequestIds();
  /** Open WebSocket tunnels: closed when idle, and by a drain once its grace period is over. */
  readonly tunnels = new TunnelRegistry();
  shedder: LoadShedder | undefined;
  accessLog: AccessLog | undefined;
  readonly random: Random;
  private readonly maxHeaderValues: number;
  private readonly underscores: UnderscoreHeaders;
  readonly listener: ListenerContext;
  /** X-Forwarded-Port: the port clients connect to, known once bound (bound()). */
  private portText = '';

  constructor(
    private readonly tables: TableSource,
    readonly metrics: DataPlaneMetrics,
    options: ForwarderOptions = {},
  ) {
    this.noRoute = metrics.requestStats('', '');
    this.shedder = options.shedder;
    this.accessLog = options.accessLog;
    this.random = options.random ?? systemRandom;
    this.maxHeaderValues = 2 * (options.maxHeaders ?? DEFAULT_MAX_HEADERS);
    this.underscores = options.underscoreHeaders ?? 'drop';
    this.listener = options.listener ?? { name: DEFAULT_LISTENER, protocol: 'http' };
  }

  /** The listener is bound to `port` (what X-Forwarded-Port says). */
  bound(port: number): void {
    this.portText = String(port);
  }

  /** The 'request' listener of either client-side server (exchange.ts). */
  readonly handle = (req: ProxyRequest, res: ProxyResponse): void => {
    const startedAt = performance.now();
    const log = this.accessLog;
    if (log !== undefined) {
      const tagged = res as LoggedResponse;
      tagged[kLog] = log;
      tagged[kStart] = startedAt;
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
    // Origin-form only: an absolute-form target (`GET http://…`) is a forward-proxy request. HTTP/1.x and HTTP/2, never 0.9.
    if (url.charCodeAt(0) !== 47 /* / */ || req.httpVersionMajor === 0) {
      this.noRoute.byClass[4]!++;
      return sendLocal(res, LOCAL_REPLIES.badRequest);
    }
    const raw = req.rawHeaders;
    if (raw.length > this.maxHeaderValues) {
      this.noRoute.byClass[4]!++;
      return sendLocal(res, LOCAL_REPLIES.tooManyHeaders);
    }
    scanRequestHeaders(raw, scan, this.underscores);
    const host = scan.host;
    if (scan.duplicateHost || scan.transferCoding === TRANSFER_CODING.UNFRAMED || (host !== undefined && !isValidHostHeader(host))) {
      this.noRoute.byClass[4]!++;
      return sendLocal(res, LOCAL_REPLIES.badRequest);
    }
    if (scan.transferCoding === TRANSFER_CODING.UNSUPPORTED) {
      this.noRoute.byClass[5]!++;
      return sendLocal(res, LOCAL_REPLIES.transferCodingNotImplemented);
    }
    const normalized = host === undefined ? undefined : normalizeHost(host);
    const listener = this.listener;
    // One view of the request for route conditions, the rate limiter's key and the balancers.
    pickCtx.reset(raw, url, req.socket, req.method);
    const route = table.match(normalized, url, pickCtx, listener.name);
    if (route === undefined) {
      this.noRoute.byClass[4]!++;
      return sendLocal(res, LOCAL_REPLIES.noRoute);
    }
    const toHttps = route.httpsRedirect;
    if (toHttps !== undefined && listener.protocol === 'http') {
      route.noBackend.byClass[3]!++;
      // Without a Host there is no URL to send the client to.
      if (normalized === undefined) return sendLocal(res, LOCAL_REPLIES.badRequest);
      return sendHttpsRedirect(res, toHttps.status, `https://${normalized}${toHttps.port === 443 ? '' : `:${toHttps.port}`}${url}`);
    }
    const limiter = route.rateLimiter;
    if (limiter !== undefined) {
      const key = limiter.header === undefined ? undefined : pickCtx.header(limiter.header);
      const wait = limiter.take(key ?? req.socket.remoteAddress ?? '', performance.now());
      if (wait > 0) {
        route.rateLimited.n++;
        route.noBackend.byClass[4]!++;
        return sendRateLimited(res, wait);
      }
    }
    const redirect = route.redirect;
    if (redirect !== undefined) {
      route.noBackend.count(redirect.status);
      return sendRedirect(res, redirect.status, redirectLocation(redirect, route.pathPrefix, host, url));
    }
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
    // A request without Host (HTTP/1.0) goes upstream with the backend's address as its Host, as
    // NGINX sends $proxy_host: an HTTP/1.1 request must carry one (RFC 9112 §3.2).
    let hostAt = -1;
    if (host !== undefined) headers.push('host', host, 'x-forwarded-host', host);
    else {
      headers.push('host', '');
      hostAt = headers.length - 1;
    }
    const ip = req.socket.remoteAddress;
    const forwardedFor = scan.forwardedFor;
    if (ip !== undefined) headers.push('x-forwarded-for', forwardedFor === undefined ? ip : `${forwardedFor}, ${ip}`);
    else if (forwardedFor !== undefined) headers.push('x-forwarded-for', forwardedFor);
    headers.push('x-forwarded-proto', listener.protocol);
    if (this.portText !== '') headers.push('x-forwarded-port', this.portText);
    const forwarded = scan.forwarded;
    if (route.forwarded) {
      const element = forwardedElement(ip, listener.protocol, host);
      headers.push('forwarded', forwarded === undefined ? element : `${forwarded}, ${element}`);
    } else if (forwarded !== undefined) headers.push('forwarded', forwarded);
    if (!scan.hasRequestId) {
      const id = this.ids.next();
      headers.push('x-request-id', id);
      if (log !== undefined) (res as LoggedResponse)[kRequestId] = id;
    }
    if (route.requestHeaders !== undefined) {
      applyHeaderRules(headers, route.requestHeaders);
      // The edits may have moved the Host placeholder (they never remove Host).
      if (hostAt >= 0) hostAt = headers.lastIndexOf('host') + 1;
    }
    // The path upstream, with the matched prefix rewritten when the route says so.
    const path = route.rewritePrefix === undefined ? url : route.rewritePrefix + url.slice(route.pathPrefix.length);

    target.pool.resilience.budget.requests++;
    // A WebSocket upgrade on a route that tunnels them; any other upgrade is served as a plain
    // request (its Upgrade header dropped), never passed through blind.
    if (route.websocket.enabled && req.method === 'GET' && !scan.hasBody && isWebSocketUpgrade(scan.upgrade) && res.takeConnection !== undefined) {
      headers.push('upgrade', 'websocket', 'connection', 'Upgrade');
      new TunnelCall(req, res, this, route, target, backend, a === ADMIT_TRIAL, path, headers).send();
      return;
    }
    const hsts = listener.protocol === 'https' ? route.hsts : undefined;
    const call = new ProxyCall(
      req,
      res,
      this,
      route,
      target,
      backend,
      a === ADMIT_TRIAL,
      path,
      headers,
      scan.hasBody,
      pickCtx.setCookie,
      hostAt,
      startedAt,
      hsts,
    );
    // A chunked body is parsed as it arrives: wait until the parser has seen the rest of this
    // packet, so a malformed chunk sent along with the head fails the request before anything
    // reaches a backend.
    if (scan.chunked) call.sendSoon();
    else call.send();
  };
}
