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
 * handed to onComplete as they came. A session idle for keepAliveTimeoutMs (no stream
 * open, or only streams already answered or given up) is destroyed.
 *
 * WebSocket tunnels are HTTP/1.1 upgrades on a connection of their own (tunnel.ts), as with the
 * other clients.
 */
import http2, { constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import tls from 'node:tls';
import { UPSTREAM_ERRORS, UpstreamError } from '../errors.js';
import { CONNECTION_SPECIFIC, withoutPseudo, SINGLE_VALUE } from '../http2/header-fields.js';
import { destroyOffNghttp2Stack } from '../http2/session-end.js';
import { connectPlain } from '../runtime/plain-connect.js';
import { splitAddress, type Http1PoolOptions } from './http1-pool.js';
import { TunnelSet, type TunnelHandler } from './tunnel.js';
import type { Upstream, UpstreamHandler, UpstreamRequest } from './upstream.js';

export interface Http2UpstreamOptions extends Http1PoolOptions {
  /** Streams one session carries at once (the backend's SETTINGS may say fewer). */
  readonly maxStreamsPerConnection: number;
}

/** Per-stream and per-session receive windows: enough to stream a response without waiting on WINDOW_UPDATEs. */
const STREAM_WINDOW = 1024 * 1024;
const SESSION_WINDOW = 8 * 1024 * 1024;

interface Session {
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

export class Http2Upstream implements Upstream {
  private readonly sessions: Session[] = [];
  private readonly waiting: Waiting[] = [];
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
    const s: Session = { session, ready: false, closing: false, active: 0, settled: 0, limit: options.maxStreamsPerConnection };
    this.sessions.push(s);
    const timer = setTimeout(
      () => session.destroy(new UpstreamError(UPSTREAM_ERRORS.CONNECT_TIMEOUT, `no connection to ${this.address} within ${options.connectTimeoutMs} ms`)),
      options.connectTimeoutMs,
    );
    session.once('connect', () => {
      clearTimeout(timer);
      s.ready = true;
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
    session.setTimeout(options.keepAliveTimeoutMs, () => {
      if (s.active === s.settled) {
        s.closing = true;
        destroyOffNghttp2Stack(session);
      }
    });
    session.once('close', () => {
      clearTimeout(timer);
      const i = this.sessions.indexOf(s);
      if (i >= 0) this.sessions.splice(i, 1);
      if (!s.ready) this.failWaiting(new UpstreamError(UPSTREAM_ERRORS.CLOSED, `the connection to ${this.address} closed before HTTP/2 was set up`));
      if (this.waiting.length > 0 && !this.closing) this.grow();
      this.checkClosed();
    });
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
      stream = s.session.request(this.requestHeaders(request), { endStream: body === null });
    } catch (err) {
      handler.onError(err as Error);
      return;
    }
    s.active++;
    new StreamExchange(
      stream,
      request,
      handler,
      this.options,
      () => {
        s.settled++;
        if (this.closing) this.retireWhenSettled(s);
      },
      () => {
        s.active--;
        s.settled--;
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
    if (s.active === s.settled) destroyOffNghttp2Stack(s.session);
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
        if (s.active === s.settled) destroyOffNghttp2Stack(s.session);
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
    for (const s of this.sessions) destroyOffNghttp2Stack(s.session);
    return new Promise((resolve) => setImmediate(resolve));
  }
}

/** One request as one stream: timeouts, back-pressure both ways, trailers, and exactly one ending. */
class StreamExchange {
  private done = false;
  /** The final response head came: only then is the stream's end a complete response. */
  private answered = false;
  private timer: NodeJS.Timeout | undefined;
  private trailers: string[] | undefined;

  constructor(
    private readonly stream: ClientHttp2Stream,
    private readonly request: UpstreamRequest,
    private readonly handler: UpstreamHandler,
    options: Http2UpstreamOptions,
    private readonly settled: () => void,
    released: () => void,
  ) {
    const headersMs = request.headersTimeout ?? options.headersTimeoutMs;
    const bodyMs = request.bodyTimeout ?? options.bodyTimeoutMs;
    if (headersMs > 0)
      this.timer = setTimeout(() => this.fail(new UpstreamError(UPSTREAM_ERRORS.HEADERS_TIMEOUT, `no response head within ${headersMs} ms`)), headersMs);
    stream.on('error', (err: Error) => this.fail(streamError(stream, err)));
    stream.once('close', () => {
      // Building an error costs a stack trace: only for a stream that closed before its end.
      if (!this.done) this.fail(streamError(stream));
      released();
    });
    stream.on('response', (headers: IncomingHttpHeaders, _flags: number, raw: string[]) => {
      if (this.done) return;
      this.answered = true;
      clearTimeout(this.timer);
      if (bodyMs > 0)
        stream.setTimeout(bodyMs, () => this.fail(new UpstreamError(UPSTREAM_ERRORS.BODY_TIMEOUT, `the response body went silent for ${bodyMs} ms`)));
      handler.onHeaders(Number(headers[':status']), withoutPseudo(raw), this.resume, '');
    });
    stream.on('data', (chunk: Buffer) => {
      if (!this.done && !handler.onData(chunk)) stream.pause();
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

  private readonly resume = (): void => {
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
    this.settled();
    clearTimeout(this.timer);
    this.stream.setTimeout(0);
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
