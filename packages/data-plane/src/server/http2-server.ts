/**
 * The client-facing HTTP/2 side of a listener: connections the listener's server hands over — a
 * TLS connection that agreed on ALPN `h2`, or a plain one that opened with the HTTP/2 preface
 * (h2c with prior knowledge) — become sessions of one node:http2 server that never listens
 * itself. Every stream is one request to the forwarder (http2-exchange.ts), balanced on its own,
 * which is what makes gRPC balance per call rather than per connection.
 *
 * Defences (node's nghttp2, configured here): at most maxConcurrentStreams streams open per
 * session (more are refused with REFUSED_STREAM), a header list past maxHeaderListSize or
 * maxHeaderListPairs resets its stream, per-stream and per-session flow-control windows bound what
 * a client may send ahead, maxSessionMemory caps what one session may make the process hold.
 * nghttp2 1.61 cuts a session that resets streams faster than its rate limit (rapid reset,
 * CVE-2023-44487) or sends endless CONTINUATION frames (CVE-2024-27316) with GOAWAY; node closes
 * one that sends too many invalid frames or has too many streams refused. Each is one session's
 * problem: other clients' sessions go on.
 *
 * Idle limits (a session without streams, a stream with nothing sent either way) are checked on
 * the upstream sweeper's tick against activity stamps the exchange writes, not by a node timer per
 * stream and per session that every frame would refresh (those timers were about 6 % of an h2
 * profile's samples; about 1 % is left).
 *
 * Liveness: a session silent for pingIntervalMs gets a PING, and one that has not answered it
 * within pingIntervalMs more is destroyed. Besides clients that vanished without a FIN, this is
 * what ends a session nghttp2 itself terminated on Node 20: after a connection error found inside
 * a read (a HEADERS where a CONTINUATION must come, say) nghttp2 sends GOAWAY and wants neither to
 * read nor to write, node 20 stops reading the socket and tells JavaScript nothing (no 'error',
 * no 'close', not even the client's FIN), and the streams already handed on never close: their
 * backend requests would be held until the request timeout. Node 22 destroys such a session
 * itself. A stuck session cannot send the PING, so it is never answered.
 *
 * Closing a session never goes through node's Http2Session.close(), which can abort a Node 20
 * process (http2/session-end.ts), and destroying one, node's own destroy() included, takes effect
 * on the next turn of the event loop. Node calls close() itself when a client sends GOAWAY(NO_ERROR),
 * so each session's close() is replaced by one that sends GOAWAY (after which nghttp2 ignores new
 * streams by itself) and destroys the session off nghttp2's stack once its streams are done.
 *
 * Draining (close): every session gets GOAWAY, streams in flight finish, then the socket closes.
 */
import http2, { constants, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { RequestListener } from '../proxy/exchange.js';
import { coarseClock, type Sweepable, unwatch, watch } from '../upstream/connection-sweeper.js';
import { checkLiveness, type Liveness } from '../http2/liveness.js';
import { deferDestroys, destroyOffNghttp2Stack } from '../http2/session-end.js';
import { Http2ClientRequest, Http2ClientResponse } from './http2-exchange.js';

export interface Http2ServerSettings {
  /** Streams a client may have open at once per connection. Default 128. */
  readonly maxConcurrentStreams: number;
  /** Largest request header list (bytes, as HTTP/2 counts it: names + values + 32 per field). */
  readonly maxHeaderListSize: number;
  /** Most header fields in a request (pseudo-headers included). */
  readonly maxHeaderListPairs: number;
  /** What a client may send ahead on one stream before the proxy reads it (bytes). */
  readonly streamWindowBytes: number;
  /** What a client may send ahead on one connection, all streams together (bytes). */
  readonly connectionWindowBytes: number;
  /** Memory one session may hold in nghttp2 (MB) before new streams are refused. */
  readonly maxSessionMemoryMb: number;
  /** A connection without streams for this long is closed (ms); 0: never. */
  readonly idleTimeoutMs: number;
  /** A stream with no frame either way for this long is reset (ms): a trickling request must not hold a backend forever; 0: never. */
  readonly streamIdleTimeoutMs: number;
  /** A session silent this long gets a PING, and is destroyed if no answer comes within as long again (ms); 0: never. */
  readonly pingIntervalMs: number;
}

export const HTTP2_SERVER_DEFAULTS = Object.freeze({
  maxConcurrentStreams: 128,
  streamWindowBytes: 256 * 1024,
  connectionWindowBytes: 1024 * 1024,
  maxSessionMemoryMb: 32,
});

/** The HTTP/2 connection preface a client with prior knowledge opens with (RFC 9113 §3.4). */
export const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

interface SessionState extends Liveness {
  readonly socket: Socket;
  streams: number;
  /** coarseClock() when the session last had no stream open. */
  idleSince: number;
  /** GOAWAY sent: the session ends when its last stream does. */
  closing: boolean;
}

const kState = Symbol('lb.http2Session');
type TrackedSession = ServerHttp2Session & { [kState]?: SessionState };

function ignore(): void {}

/**
 * Destroys a closing session off nghttp2's stack, unless a stream opened meanwhile: node emits
 * 'stream' on the next tick, so a request that came in the same read as the client's GOAWAY is
 * reported after it.
 */
function destroyLater(session: ServerHttp2Session, state: SessionState): void {
  destroyOffNghttp2Stack(session, () => state.streams > 0);
}

/**
 * What a session's close() does here instead of node's: GOAWAY now, the end once no stream is
 * open. Node's own calls to close() (a client's GOAWAY, a frame error) come here too.
 */
function closeGracefully(session: ServerHttp2Session, state: SessionState, callback?: () => void): void {
  if (typeof callback === 'function') session.once('close', callback);
  if (state.closing || session.destroyed) return;
  state.closing = true;
  // Node's own close() on a socket that is gone (socketOnClose) needs no GOAWAY: nobody reads it.
  if (!state.socket.destroyed) session.goaway(constants.NGHTTP2_NO_ERROR);
  if (state.streams === 0) destroyLater(session, state);
}

export class Http2Sessions implements Sweepable {
  private readonly server: http2.Http2Server;
  private readonly sessions = new Set<TrackedSession>();
  /** The streams open now: each one's response (which knows its request and its stream) and its session's state. */
  private readonly open = new Map<Http2ClientResponse, SessionState>();
  /** The socket being handed over, read by the 'session' listener that emit() runs synchronously. */
  private arriving: Socket | undefined;
  private closing = false;

  constructor(
    private readonly settings: Http2ServerSettings,
    private readonly listener: RequestListener,
  ) {
    this.server = http2.createServer({
      maxSessionMemory: settings.maxSessionMemoryMb,
      maxHeaderListPairs: settings.maxHeaderListPairs,
      // The proxy never pushes; a client may not ask the proxy to hold many of its own streams.
      peerMaxConcurrentStreams: 100,
      settings: {
        enablePush: false,
        maxConcurrentStreams: settings.maxConcurrentStreams,
        maxHeaderListSize: settings.maxHeaderListSize,
        initialWindowSize: settings.streamWindowBytes,
      },
    });
    this.server.on('session', (session: TrackedSession) => this.onSession(session));
    this.server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, raw: string[]) =>
      this.onStream(stream, headers, flags, raw),
    );
    // Without these node would throw what a session or its socket reports.
    this.server.on('sessionError', ignore);
    this.server.on('error', ignore);
  }

  /** Open sessions. */
  get size(): number {
    return this.sessions.size;
  }

  /** Takes over a connection that speaks HTTP/2 (its first bytes, if read, put back with unshift). */
  accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.arriving = socket;
    this.server.emit('connection', socket);
    this.arriving = undefined;
  }

  private onSession(session: TrackedSession): void {
    const socket = this.arriving!;
    this.sessions.add(session);
    // Watched first: the coarse clock is current only while the sweeper ticks.
    if (this.sessions.size === 1) watch(this);
    const now = coarseClock();
    const state: SessionState = { socket, streams: 0, idleSince: now, lastSeen: now, pingSentAt: 0, closing: false };
    session[kState] = state;
    session.close = (callback?: () => void) => closeGracefully(session, state, callback);
    // Node destroys sessions itself on some errors, possibly inside nghttp2's read (session-end.ts).
    deferDestroys(session);
    session.on('error', ignore);
    session.once('close', () => {
      this.sessions.delete(session);
      if (this.sessions.size === 0) unwatch(this);
    });
    // The listener's sockets allow half-open (an HTTP/1.1 client may half-close and still read its
    // answers), so node would keep a session whose client sent FIN. An HTTP/2 client that closes
    // its side can send nothing more — not the rest of a request body, not a WINDOW_UPDATE — so the
    // session ends there, as nginx ends it, and its streams' backend requests are cancelled.
    socket.once('end', () => session.destroy());
    session.once('connect', () => {
      // The connection window is one setting HTTP/2 sends as a WINDOW_UPDATE, not in SETTINGS.
      if (this.settings.connectionWindowBytes > 65_535 && !session.destroyed) session.setLocalWindowSize(this.settings.connectionWindowBytes);
    });
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, raw: string[]): void {
    // A stream node reports after its session was destroyed (a flood cut it): nobody to answer.
    const session = stream.session as TrackedSession | undefined;
    const state = session?.[kState];
    if (session === undefined || state === undefined || stream.destroyed) {
      stream.on('error', ignore);
      if (!stream.destroyed) stream.close(constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    state.streams++;
    state.lastSeen = coarseClock();
    const req = new Http2ClientRequest(stream, state.socket, headers, raw, (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0);
    const res = new Http2ClientResponse(stream, req);
    stream.on('error', ignore);
    this.open.set(res, state);
    stream.once('close', () => {
      this.open.delete(res);
      state.lastSeen = coarseClock();
      if (--state.streams === 0) state.idleSince = state.lastSeen;
      req.cut();
      res.emit('close');
      if (state.streams === 0 && state.closing) destroyLater(session, state);
    });
    this.listener(req, res);
  }

  /**
   * The sweeper's tick: streams silent past streamIdleTimeoutMs are reset, sessions idle past
   * idleTimeoutMs closed, sessions silent past pingIntervalMs pinged, and those that left a PING
   * unanswered as long destroyed.
   */
  sweep(now: number): void {
    const streamIdle = this.settings.streamIdleTimeoutMs;
    for (const [res, state] of this.open) {
      const last = Math.max(res.lastActivity, res.req.lastActivity);
      if (last > state.lastSeen) state.lastSeen = last;
      if (streamIdle === 0 || now - last <= streamIdle) continue;
      this.open.delete(res);
      if (!res.stream.destroyed) res.stream.close(constants.NGHTTP2_CANCEL);
    }
    const idle = this.settings.idleTimeoutMs;
    const ping = this.settings.pingIntervalMs;
    for (const session of this.sessions) {
      const state = session[kState]!;
      if (idle > 0 && state.streams === 0 && now - state.idleSince > idle) session.close();
      if (ping > 0 && !session.destroyed) checkLiveness(session, state, now, ping, () => session.destroy());
    }
  }

  /** Draining: every session gets GOAWAY; streams in flight finish, then each connection closes. */
  close(): void {
    this.closing = true;
    for (const session of this.sessions) session.close();
  }

  /** Closes the sessions that have no stream open now. */
  closeIdle(): void {
    for (const session of this.sessions) if (session[kState]!.streams === 0 && !session.destroyed) session.close();
  }

  /** Ends every session now; streams in flight are cut. */
  closeAll(): void {
    for (const session of this.sessions) session.destroy();
  }
}
