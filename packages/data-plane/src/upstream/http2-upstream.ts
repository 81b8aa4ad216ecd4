/**
 * HTTP/2 to one backend (pool `protocol: http2` over TLS with ALPN `h2`, or `h2c` in the clear):
 * requests are streams multiplexed on a few node:http2 client sessions. A stream goes on the first
 * session with room — below the pool's maxStreamsPerConnection and the backend's own
 * SETTINGS_MAX_CONCURRENT_STREAMS — so one session carries the load until it is full; then another
 * is opened, up to `connections`, and past that requests wait in order for a stream to end.
 *
 * A session that gets GOAWAY takes no new stream; its streams in flight finish, and streams past
 * the backend's last one (REFUSED_STREAM) fail with LB_UPSTREAM_REFUSED_STREAM, which the call
 * retries like a refused connection: the backend never saw them. Trailers (gRPC's status) are
 * handed to onComplete as they came.
 *
 * Time limits are numbers checked on the upstream sweeper's tick (connection-sweeper.ts), not a
 * node timer per stream and per session that every frame would refresh (what the client side
 * moved off in http2-server.ts): a stream's response head within headersTimeoutMs, its body
 * never silent for bodyTimeoutMs while the proxy is reading it; a session idle for
 * keepAliveTimeoutMs (no stream open, or only streams already answered or given up) is
 * destroyed. Liveness: a session silent for pingIntervalMs gets a PING, and one that has not
 * answered within as long again is destroyed, its streams failed. A backend that vanished without
 * a FIN or RST (a host gone, a NAT or firewall that dropped the connection's state) would
 * otherwise keep its session: every call multiplexed onto it would hang until its own timeout.
 *
 * WebSocket tunnels are HTTP/1.1 upgrades on a connection of their own (tunnel.ts), as with the
 * other clients.
 */
import http2, { constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import tls from 'node:tls';
import { UPSTREAM_ERRORS, UpstreamError } from '../errors.js';
import { CONNECTION_SPECIFIC, withoutPseudo, SINGLE_VALUE } from '../http2/header-fields.js';
import { checkLiveness, type Liveness } from '../http2/liveness.js';
import { openStream } from '../http2/open-stream.js';
import { deferDestroys } from '../http2/session-end.js';
import { connectPlain } from '../runtime/plain-connect.js';
import { coarseClock, deadlineIn, type Sweepable, unwatch, watch } from './connection-sweeper.js';
import { splitAddress, type Http1PoolOptions } from './http1-pool.js';
import { TunnelSet, type TunnelHandler } from './tunnel.js';
import type { Upstream, UpstreamHandler, UpstreamRequest } from './upstream.js';

export interface Http2UpstreamOptions extends Http1PoolOptions {
  /** Streams one session carries at once (the backend's SETTINGS may say fewer). */
  readonly maxStreamsPerConnection: number;
  /** A session silent this long gets a PING, and is destroyed if no answer comes within as long again (ms); 0 or absent: never. */
  readonly pingIntervalMs?: number | undefined;
}

/** Per-stream and per-session receive windows: enough to stream a response without waiting on WINDOW_UPDATEs. */
const STREAM_WINDOW = 1024 * 1024;
const SESSION_WINDOW = 8 * 1024 * 1024;

interface Session extends Liveness {
  readonly session: ClientHttp2Session;
  /** The HTTP/2 preface and SETTINGS are exchanged: streams may go out. */
  ready: boolean;
  /** GOAWAY received or sent: no new stream. */
  closing: boolean;
  /** Streams open on it (node has not closed them yet). */
  active: number;
  /**
   * Of those, the ones whose exchange has ended (answered, or failed and reset): nothing is lost
   * if the session goes. On Node 20 a reset stream of a stuck session never closes
   * (http2/session-end.ts), so sessions end once all their streams have settled.
   */
  settled: number;
  /** Streams it may carry at once: the pool's limit, lowered by the backend's SETTINGS when they arrive. */
  limit: number;
  /** coarseClock() since when every stream on it has settled (its keep-alive clock). */
  idleSince: number;
}

interface Waiting {
  readonly request: UpstreamRequest;
  readonly handler: UpstreamHandler;
}

function ignore(): void {}

/** A stream's failure as the proxy classifies it (errors.ts): refused unprocessed, or reset mid-way. */
function streamError(stream: ClientHttp2Stream, err?: Error & { code?: string }): Error {
  if (stream.rstCode === constants.NGHTTP2_REFUSED_STREAM || err?.code === 'ERR_HTTP2_GOAWAY_SESSION')
    return new UpstreamError(UPSTREAM_ERRORS.REFUSED_STREAM, 'the backend refused the stream unprocessed');
  // Socket errors keep their own code (ECONNRESET…).
  if (err !== undefined && typeof err.code === 'string' && !err.code.startsWith('ERR_HTTP2')) return err;
  return new UpstreamError(UPSTREAM_ERRORS.CLOSED, `the backend reset the stream (HTTP/2 error ${stream.rstCode ?? 'unknown'})`);
}

export class Http2Upstream implements Upstream, Sweepable {
  private readonly sessions: Session[] = [];
  private readonly waiting: Waiting[] = [];
  /** Streams whose exchange has not ended: their deadlines are checked on the sweeper's tick. */
  private readonly exchanges = new Set<StreamExchange>();
  private readonly tunnels = new TunnelSet();
  private readonly host: string;
  private readonly port: number;
  private readonly scheme: 'http' | 'https';
  private closing = false;
  private onClosed: (() => void) | undefined;
  private readonly limit: number;

  constructor(
    private readonly address: string,
    private readonly options: Http2UpstreamOptions,
  ) {
    const { host, port } = splitAddress(address);
    this.host = host;
    this.port = port;
    this.scheme = options.tls === undefined ? 'http' : 'https';
    this.limit = options.connections ?? Number.POSITIVE_INFINITY;
  }

  get openConnections(): number {
    return this.sessions.length;
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler): void {
    if (this.closing) {
      handler.onError(new UpstreamError(UPSTREAM_ERRORS.POOL_CLOSED, 'the upstream pool is closed'));
      return;
    }
    const session = this.withRoom();
    if (session !== undefined) {
      this.start(session, request, handler);
      return;
    }
    this.waiting.push({ request, handler });
    this.grow();
  }

  private withRoom(): Session | undefined {
    for (const s of this.sessions) if (s.ready && !s.closing && s.active < s.limit) return s;
    return undefined;
  }

  /** Opens a session for waiting requests unless one is being opened already or the limit is reached. */
  private grow(): void {
    let usable = 0;
    for (const s of this.sessions) {
      if (!s.ready) return;
      if (!s.closing) usable++;
    }
    if (usable < this.limit) this.connect();
  }

  private connect(): void {
    const { host, port, options } = this;
    const upstreamTls = options.tls;
    const session = http2.connect(`${this.scheme}://${this.address}`, {
      createConnection: () =>
        upstreamTls === undefined
          ? connectPlain({ host, port })
          : tls.connect({
              host,
              port,
              secureContext: upstreamTls.context,
              rejectUnauthorized: upstreamTls.verify,
              ALPNProtocols: ['h2'],
              ...(upstreamTls.servername !== undefined ? { servername: upstreamTls.servername } : {}),
            }),
      settings: { enablePush: false, initialWindowSize: STREAM_WINDOW },
      maxSessionMemory: 64,
    });
    const now = coarseClock();
    const s: Session = {
      session,
      ready: false,
      closing: false,
      active: 0,
      settled: 0,
      limit: options.maxStreamsPerConnection,
      idleSince: now,
      lastSeen: now,
      pingSentAt: 0,
    };
    // Never on nghttp2's stack, even when node itself destroys the session (http2/session-end.ts).
    deferDestroys(session, () => {
      s.closing = true;
    });
    this.sessions.push(s);
    // Watched from the first session on: the coarse clock is current only while the sweeper ticks.
    if (this.sessions.length === 1) watch(this);
    const timer = setTimeout(
      () => session.destroy(new UpstreamError(UPSTREAM_ERRORS.CONNECT_TIMEOUT, `no connection to ${this.address} within ${options.connectTimeoutMs} ms`)),
      options.connectTimeoutMs,
    );
    session.once('connect', () => {
      clearTimeout(timer);
      s.ready = true;
      s.idleSince = s.lastSeen = coarseClock();
      if (!session.destroyed) session.setLocalWindowSize(SESSION_WINDOW);
      this.drain(s);
    });
    // The backend's SETTINGS may allow fewer streams than the pool's limit (read here once, not per request).
    session.on('remoteSettings', (settings: http2.Settings) => {
      const peer = settings.maxConcurrentStreams;
      s.limit = peer !== undefined && peer < options.maxStreamsPerConnection ? peer : options.maxStreamsPerConnection;
      this.drain(s);
    });
    session.on('goaway', () => {
      s.closing = true;
    });
    session.on('error', (err: Error) => {
      clearTimeout(timer);
      // Requests waiting for this session fail with the reason it never came up (connect kind: retried elsewhere).
      if (!s.ready) this.failWaiting(err);
    });
    session.once('close', () => {
      clearTimeout(timer);
      const i = this.sessions.indexOf(s);
      if (i >= 0) this.sessions.splice(i, 1);
      if (this.sessions.length === 0) unwatch(this);
      if (!s.ready) this.failWaiting(new UpstreamError(UPSTREAM_ERRORS.CLOSED, `the connection to ${this.address} closed before HTTP/2 was set up`));
      if (this.waiting.length > 0 && !this.closing) this.grow();
      this.checkClosed();
    });
  }

  /**
   * The sweeper's tick: streams past their deadlines fail; sessions idle past keepAliveTimeoutMs
   * go; sessions silent past pingIntervalMs are pinged, and those that left a PING unanswered as
   * long are destroyed.
   */
  sweep(now: number): void {
    for (const exchange of this.exchanges) exchange.expire(now);
    const idle = this.options.keepAliveTimeoutMs;
    const ping = this.options.pingIntervalMs ?? 0;
    for (const s of this.sessions) {
      if (!s.ready || s.session.destroyed) continue;
      if (s.active === s.settled && idle > 0 && now - s.idleSince > idle) {
        // Marked closing at once, destroyed on the next turn (deferDestroys, in connect()).
        s.session.destroy();
        continue;
      }
      if (ping > 0)
        // destroy() marks the session closing at once (deferDestroys' onRequested, in connect()).
        checkLiveness(s.session, s, now, ping, () =>
          s.session.destroy(new UpstreamError(UPSTREAM_ERRORS.CLOSED, `${this.address} did not answer a PING within ${ping} ms: the connection is dead`)),
        );
    }
  }

  private failWaiting(err: Error): void {
    // Only when no other session can take them.
    if (this.sessions.some((o) => o.ready && !o.closing)) return;
    const waiting = this.waiting.splice(0);
    for (const w of waiting) w.handler.onError(err);
  }

  /** Starts waiting requests on `s` while it has room; those left over get another connection if the limit allows. */
  private drain(s: Session): void {
    while (this.waiting.length > 0 && s.ready && !s.closing && s.active < s.limit) {
      const w = this.waiting.shift()!;
      this.start(s, w.request, w.handler);
    }
    if (this.waiting.length > 0 && !this.closing) this.grow();
  }

  private requestHeaders(request: UpstreamRequest): OutgoingHttpHeaders {
    const out: OutgoingHttpHeaders = Object.create(null);
    out[':method'] = request.method;
    out[':scheme'] = this.scheme;
    out[':path'] = request.path;
    const raw = request.headers;
    let grpc = false;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      const value = raw[i + 1]!;
      if (name === 'host') {
        out[':authority'] ??= value;
        continue;
      }
      if (CONNECTION_SPECIFIC.has(name)) continue;
      if (name === 'content-type' && value.startsWith('application/grpc')) grpc = true;
      const had = out[name];
      if (had === undefined) out[name] = value;
      else if (SINGLE_VALUE.has(name)) continue;
      else if (Array.isArray(had)) had.push(value);
      else out[name] = [had as string, value];
    }
    out[':authority'] ??= this.address;
    // gRPC servers want to know the client takes trailers; the client's own TE is hop-by-hop.
    if (grpc) out.te = 'trailers';
    return out;
  }

  private start(s: Session, request: UpstreamRequest, handler: UpstreamHandler): void {
    const body = request.body;
    let stream: ClientHttp2Stream;
    try {
      stream = openStream(s.session, this.requestHeaders(request), body === null);
    } catch (err) {
      handler.onError(err as Error);
      return;
    }
    s.active++;
    s.lastSeen = coarseClock();
    new StreamExchange(
      stream,
      request,
      handler,
      this.options,
      this.exchanges,
      () => {
        s.settled++;
        if (s.active === s.settled) s.idleSince = coarseClock();
        if (this.closing) this.retireWhenSettled(s);
      },
      () => {
        s.active--;
        s.settled--;
        s.lastSeen = coarseClock();
        if (s.active === s.settled) s.idleSince = s.lastSeen;
        if (this.waiting.length > 0) this.drain(s);
        else if (this.closing) this.retireWhenSettled(s);
      },
    );
  }

  tunnel(request: UpstreamRequest, handler: TunnelHandler): void {
    if (this.closing) {
      handler.onError(new UpstreamError(UPSTREAM_ERRORS.POOL_CLOSED, 'the upstream pool is closed'));
      return;
    }
    this.tunnels.open(
      {
        host: this.host,
        port: this.port,
        connectTimeoutMs: this.options.connectTimeoutMs,
        headersTimeoutMs: this.options.headersTimeoutMs,
        tls: this.options.tls,
      },
      request,
      handler,
    );
  }

  /** Destroys a session of a closing pool once every stream on it has settled. */
  private retireWhenSettled(s: Session): void {
    if (s.active === s.settled) s.session.destroy();
  }

  private checkClosed(): void {
    if (this.closing && this.sessions.length === 0) this.onClosed?.();
  }

  close(): Promise<void> {
    this.closing = true;
    this.failWaiting(new UpstreamError(UPSTREAM_ERRORS.POOL_CLOSED, 'the upstream pool is closed'));
    const sessions = new Promise<void>((resolve) => {
      this.onClosed = resolve;
      // Each closes once its streams in flight are done.
      for (const s of this.sessions) {
        s.closing = true;
        // GOAWAY now; each session goes once its streams have settled.
        if (s.active === s.settled) s.session.destroy();
        else s.session.goaway(constants.NGHTTP2_NO_ERROR);
      }
      this.checkClosed();
    });
    return Promise.all([sessions, this.tunnels.closed()]).then(() => {});
  }

  destroy(): Promise<void> {
    this.closing = true;
    this.tunnels.destroyAll();
    const waiting = this.waiting.splice(0);
    for (const w of waiting) w.handler.onError(new UpstreamError(UPSTREAM_ERRORS.POOL_CLOSED, 'the upstream pool is closed'));
    for (const s of this.sessions) s.session.destroy();
    return new Promise((resolve) => setImmediate(resolve));
  }
}

/** One request as one stream: timeouts, back-pressure both ways, trailers, and exactly one ending. */
class StreamExchange {
  private done = false;
  /** The final response head came: only then is the stream's end a complete response. */
  private answered = false;
  private trailers: string[] | undefined;
  /** performance.now() ms by which the response head must come; 0: no limit. */
  private headersDeadline = 0;
  private readonly headersMs: number;
  private readonly bodyMs: number;
  /** coarseClock() of the last body bytes (or the head); the body's silence is measured from it. */
  private lastData = 0;
  /** The proxy stopped reading (its client is slow): the backend is not the one keeping silent. */
  private paused = false;

  constructor(
    private readonly stream: ClientHttp2Stream,
    private readonly request: UpstreamRequest,
    private readonly handler: UpstreamHandler,
    options: Http2UpstreamOptions,
    private readonly open: Set<StreamExchange>,
    private readonly settled: () => void,
    released: () => void,
  ) {
    this.headersMs = request.headersTimeout ?? options.headersTimeoutMs;
    this.bodyMs = request.bodyTimeout ?? options.bodyTimeoutMs;
    if (this.headersMs > 0) this.headersDeadline = deadlineIn(this.headersMs);
    open.add(this);
    stream.on('error', (err: Error) => this.fail(streamError(stream, err)));
    stream.once('close', () => {
      // Building an error costs a stack trace: only for a stream that closed before its end.
      if (!this.done) this.fail(streamError(stream));
      released();
    });
    stream.on('response', (headers: IncomingHttpHeaders, _flags: number, raw: string[]) => {
      if (this.done) return;
      this.answered = true;
      this.lastData = coarseClock();
      handler.onHeaders(Number(headers[':status']), withoutPseudo(raw), this.resume, '');
    });
    stream.on('data', (chunk: Buffer) => {
      if (this.done) return;
      this.lastData = coarseClock();
      if (!handler.onData(chunk)) {
        this.paused = true;
        stream.pause();
      }
    });
    stream.on('trailers', (_headers: IncomingHttpHeaders, _flags: number, raw: string[]) => {
      this.trailers = withoutPseudo(raw);
    });
    stream.once('end', () => {
      // A stream can end with no response at all (the backend closed the connection after the
      // request): that is a failure like an HTTP/1.1 backend's hang-up, never an empty answer.
      if (!this.answered) this.fail(new UpstreamError(UPSTREAM_ERRORS.CLOSED, 'the backend ended the stream without a response'));
      else if (this.finish()) handler.onComplete(this.trailers);
    });
    handler.onConnect(this.abort);
    const body = request.body;
    if (body !== null && !this.done) {
      body.on('error', this.onBodyError);
      body.once('close', this.onBodyClose);
      body.pipe(stream);
    }
  }

  /** The sweeper's tick: the head late, or the body silent too long while the proxy reads it. */
  expire(now: number): void {
    if (!this.answered) {
      if (this.headersDeadline !== 0 && now > this.headersDeadline)
        this.fail(new UpstreamError(UPSTREAM_ERRORS.HEADERS_TIMEOUT, `no response head within ${this.headersMs} ms`));
    } else if (this.bodyMs > 0 && !this.paused && now - this.lastData > this.bodyMs) {
      this.fail(new UpstreamError(UPSTREAM_ERRORS.BODY_TIMEOUT, `the response body went silent for ${this.bodyMs} ms`));
    }
  }

  private readonly resume = (): void => {
    if (this.paused) {
      this.paused = false;
      // Silence is measured from here: the wait was the client's.
      this.lastData = coarseClock();
    }
    this.stream.resume();
  };

  private readonly abort = (err?: Error): void => {
    this.fail(err ?? new UpstreamError(UPSTREAM_ERRORS.CLIENT_ABORTED, 'aborted'));
  };

  private readonly onBodyError = (): void => {
    this.fail(new UpstreamError(UPSTREAM_ERRORS.REQUEST_BODY, 'the request body failed'));
  };

  /** A body that closes before its end (the client reset its stream) ends the request too. */
  private readonly onBodyClose = (): void => {
    if (!this.request.body!.readableEnded) this.onBodyError();
  };

  private finish(): boolean {
    if (this.done) return false;
    this.done = true;
    this.open.delete(this);
    this.settled();
    const body = this.request.body;
    if (body !== null) {
      body.off('error', this.onBodyError);
      body.off('close', this.onBodyClose);
      body.unpipe(this.stream);
    }
    return true;
  }

  private fail(err: Error): void {
    if (!this.finish()) return;
    const stream = this.stream;
    if (!stream.destroyed) stream.close(constants.NGHTTP2_CANCEL);
    stream.on('error', ignore);
    this.handler.onError(err);
  }
}
