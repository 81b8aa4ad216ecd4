/**
 * One keep-alive HTTP/1.1 connection to a backend, parsed by node's native llhttp
 * (http1-parser.ts). It carries one request at a time (no pipelining): the request head is
 * written in one `write` and the body streams with back-pressure both ways. Every callback is a
 * method bound once per connection, so a request allocates only its head string and its abort
 * function.
 *
 * A plain connection to a backend named by IP address runs on a libuv handle driven directly
 * (runtime/raw-tcp.ts), as L4 sessions do, where raw handles passed their self-test and
 * `rawHandles` is set: a request's write and a response's read then cost the system calls and
 * little else, without net.Socket's Writable and its tick per write (bench/README.md). Otherwise —
 * a host name, TLS, or handles that do not behave on this node — it runs on a net.Socket
 * (runtime/socket-end.ts); both sit behind TcpEnd.
 *
 * The connection reads into recycled buffers (read-buffers.ts). A body framed by Content-Length
 * is not given to the parser at all: the head is parsed as if the connection were switching
 * protocols (llhttp stops right after it and says where), the body's bytes go to the handler,
 * counted down to the length, and the parser goes on with the next response. Pieces of
 * LEND_MIN or more go as views of the read buffer (what keeps memory flat while large bodies
 * stream through), shorter ones as copies. The parser's own body callback would cost more than
 * the rest of the response's parse: a copy into a new ArrayBuffer and a full MakeCallback into
 * JavaScript, about 1 µs of a 2 µs parse on AMD EPYC (bench/README.md). Chunked bodies, and
 * bodies delimited by the close, go through the parser, which hands over copies.
 *
 * Reuse rules (RFC 9112 §9): a connection goes back to its pool only when the response ended
 * cleanly, the backend did not ask to close (`Connection: close`, HTTP/1.0), the request body
 * was sent whole, and the backend sent nothing past the response it owed. It goes back only
 * once the parser has returned from the read that completed the response: bytes that follow
 * in the same read (a second response, a body after a HEAD answer or a 204) then belong to no
 * request, and close the connection instead of becoming the next request's response. Bytes
 * that begin a message while no request is outstanding close it too. A reused connection the backend closed before answering (it timed out
 * its idle side as we wrote) replays the request once on a new connection, if the request has
 * no body and an idempotent method: nothing can have been processed twice that way.
 */
import { isIP } from 'node:net';
import tls from 'node:tls';
import type { Readable } from 'node:stream';
import { getSystemErrorName } from 'node:util';
import { AFTER_HEAD, Http1Parser, type Http1Events } from '../http1/llhttp.js';
import { RawTcp } from '../runtime/raw-tcp.js';
import { rawTcp } from '../runtime/raw-tcp-self-test.js';
import { SocketEnd } from '../runtime/socket-end.js';
import type { TcpEnd, TcpEndEvents } from '../runtime/tcp-end.js';
import { coarseClock, deadlineIn } from './connection-sweeper.js';
import type { ReadBuffer } from './read-buffers.js';
import { tlsHandshakeError, UPSTREAM_ERRORS, UpstreamError } from '../errors.js';
import type { UpstreamHandler, UpstreamRequest } from './upstream.js';
import { http1TlsConnectOptions, type UpstreamTls } from '../tls/upstream-tls.js';

export interface ConnectionSettings {
  readonly host: string;
  readonly port: number;
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  /** TLS to the backend; absent: plain TCP. */
  readonly tls?: UpstreamTls | undefined;
  /** Plain connections to IP addresses run on libuv handles (when they passed their self-test). Default true. */
  readonly rawHandles?: boolean | undefined;
}

/** TCP keep-alive probes start after this long idle (as node:net's keepAliveInitialDelay). */
const TCP_KEEP_ALIVE_MS = 60_000;

/** A connect that failed with libuv's `status`, as node:net reports one (code, errno, syscall, address, port). */
function connectError(status: number, host: string, port: number): Error {
  let code: string;
  try {
    code = getSystemErrorName(status);
  } catch {
    code = `E${-status}`;
  }
  return Object.assign(new Error(`connect ${code} ${host}:${port}`), { code, errno: status, syscall: 'connect', address: host, port });
}

/** What a connection tells the pool that owns it. */
export interface ConnectionOwner {
  /** The newest TLS session of the backend: a new connection offers it (abbreviated handshake). */
  tlsSession: Buffer | undefined;
  /** The exchange is over and the connection can carry another request. */
  released(conn: Http1Connection): void;
  /** The connection is closed for good. */
  removed(conn: Http1Connection): void;
  /** Send `request` again on a new connection (its reused one was found closed). */
  replay(request: UpstreamRequest, handler: UpstreamHandler): void;
}

const CONNECTING = 0;
const IDLE = 1;
const BUSY = 2;
const CLOSED = 3;
/** The response ended inside the read being parsed: back to the pool once the parser returns. */
const DONE = 4;

/** RFC 9110 §9.2.2 idempotent methods: the only ones replayed after a stale keep-alive connection. */
const REPLAYABLE = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
/** Errors that mean "the connection was already gone", not "the backend answered badly". */
const CONNECTION_LOST = new Set(['ECONNRESET', 'EPIPE', UPSTREAM_ERRORS.CLOSED]);

/** Subtracted from a backend's `Keep-Alive: timeout=N`, so we stop using a connection before it does. */
const KEEP_ALIVE_MARGIN_MS = 1000;
/** scanResponseHeaders' answer for a head whose framing the proxy will not pass on. */
const FRAMING_REFUSED = -2;

/**
 * Body pieces at least this long go on as views of the read buffer, held until written; shorter
 * ones as copies. A view pins its whole 64 KiB buffer while a slow client's socket holds it: a
 * few bytes must not.
 */
export const LEND_MIN = 16 * 1024;

/** An 'error' listener a request body keeps once let go of, so that a late error has someone to hear it. */
function ignoreBodyError(): void {}

export class Http1Connection implements Http1Events, TcpEndEvents {
  private readonly socket: TcpEnd;
  private readonly parser: Http1Parser;
  /** The recycled buffer of the read being handled (undefined over TLS, whose reads are node's buffers). */
  private readBuffer: ReadBuffer | undefined = undefined;
  /** The last socket error as node reported it (TLS: what tlsHandshakeError explains). */
  private socketError: Error | undefined;
  /** Body bytes still to come of a response read past the parser (a Content-Length body). */
  private bodyRemaining = 0;
  private state = CONNECTING;
  private handler: UpstreamHandler | null = null;
  private request: UpstreamRequest | null = null;
  /** Counts requests, so an abort function kept past its request does nothing. */
  private seq = 0;
  /** performance.now() ms at which the current wait times out; 0: none. */
  private deadline = 0;
  private deadlineCode: typeof UPSTREAM_ERRORS.CONNECT_TIMEOUT | typeof UPSTREAM_ERRORS.HEADERS_TIMEOUT | typeof UPSTREAM_ERRORS.BODY_TIMEOUT =
    UPSTREAM_ERRORS.CONNECT_TIMEOUT;
  private bodyTimeoutMs = 0;
  private idleSince = 0;
  private keepAliveMs: number;
  private lastKeepAliveHint: string | undefined;
  /** It has carried a request before this one. */
  private reused = false;
  /** The current response has begun (a replay is no longer safe). */
  private responseStarted = false;
  /** The current response head was a 1xx: its end is not the request's. */
  private interim = false;
  private keepAlive = true;
  private skipBody = false;
  /** Paused because the handler's consumer is full. */
  private paused = false;
  /** The request body still streaming: its listeners, to detach. */
  private body: Readable | null = null;
  private chunked = false;
  /** TLS only: the TCP connection is up and the handshake under way (its failures are TLS failures). */
  private handshaking = false;

  constructor(
    private readonly settings: ConnectionSettings,
    private readonly owner: ConnectionOwner,
    first: UpstreamRequest,
    firstHandler: UpstreamHandler,
  ) {
    this.keepAliveMs = settings.keepAliveTimeoutMs;
    this.parser = new Http1Parser('response', this);
    // Held until connected; a connect failure is this request's error.
    this.handler = firstHandler;
    this.request = first;
    if (settings.connectTimeoutMs > 0) this.setDeadline(settings.connectTimeoutMs, UPSTREAM_ERRORS.CONNECT_TIMEOUT);
    const secure = settings.tls;
    if (secure === undefined) {
      const family = settings.rawHandles !== false && rawTcp.ok ? isIP(settings.host) : 0;
      this.socket =
        family === 4 || family === 6
          ? RawTcp.connect(settings.host, settings.port, family, this.onConnect, { keepAliveMs: TCP_KEEP_ALIVE_MS, recycledReads: true })
          : SocketEnd.connect(settings.host, settings.port, this.onConnect, TCP_KEEP_ALIVE_MS);
    } else {
      // TLS reads come as node's own buffers ('data'), not recycled ones: bodies are passed on as
      // they arrive. The connect deadline covers the handshake.
      const tlsSocket = tls.connect(http1TlsConnectOptions(secure, settings.host, settings.port, owner.tlsSession));
      tlsSocket.setNoDelay(true);
      tlsSocket.setKeepAlive(true, TCP_KEEP_ALIVE_MS);
      tlsSocket.on('connect', () => (this.handshaking = true));
      tlsSocket.on('secureConnect', this.onSecureConnect);
      tlsSocket.on('session', (session: Buffer) => (owner.tlsSession = session));
      // Before SocketEnd's own listener, which reports only the code: the handshake's failure is explained from the error.
      tlsSocket.on('error', (err: Error) => (this.socketError = err));
      const end = new SocketEnd(tlsSocket);
      this.socket = end;
      end.start(this);
    }
  }

  /** Sends `request` on this idle (or just connected) connection. */
  send(request: UpstreamRequest, handler: UpstreamHandler): void {
    this.state = BUSY;
    this.handler = handler;
    this.request = request;
    this.responseStarted = false;
    this.interim = false;
    this.keepAlive = true;
    this.skipBody = request.method === 'HEAD';
    const seq = ++this.seq;
    handler.onConnect((err) => this.abortRequest(seq, err));
    // The handler may have aborted at once (its client already left).
    if (this.handler !== handler) return;
    const headersTimeout = request.headersTimeout ?? this.settings.headersTimeoutMs;
    if (headersTimeout > 0) this.setDeadline(headersTimeout, UPSTREAM_ERRORS.HEADERS_TIMEOUT);
    else this.deadline = 0;
    this.bodyTimeoutMs = request.bodyTimeout ?? this.settings.bodyTimeoutMs;
    this.writeRequest(request);
  }

  private setDeadline(ms: number, code: typeof this.deadlineCode): void {
    this.deadline = deadlineIn(ms);
    this.deadlineCode = code;
  }

  private writeRequest(request: UpstreamRequest): void {
    const body = request.body;
    const headers = request.headers;
    let head = `${request.method} ${request.path} HTTP/1.1\r\n`;
    let hasLength = false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      if (name.length === 14 && body !== null && name.toLowerCase() === 'content-length') hasLength = true;
      head += `${name}: ${headers[i + 1]!}\r\n`;
    }
    if (body === null) {
      this.socket.writeLatin1(`${head}\r\n`);
      return;
    }
    // A body of unknown length goes chunked (RFC 9112 §7.1); one with a Content-Length as is.
    this.chunked = !hasLength;
    this.socket.writeLatin1(hasLength ? `${head}\r\n` : `${head}transfer-encoding: chunked\r\n\r\n`);
    this.body = body;
    body.on('data', this.onBodyData);
    body.on('end', this.onBodyEnd);
    body.on('error', this.onBodyError);
  }

  private readonly onBodyData = (chunk: Buffer): void => {
    let ok: boolean;
    if (this.chunked) {
      if (chunk.length === 0) return;
      // One write, one system call: the chunk framed in a copy.
      const size = `${chunk.length.toString(16)}\r\n`;
      const framed = Buffer.allocUnsafe(size.length + chunk.length + 2);
      framed.write(size, 0, 'latin1');
      chunk.copy(framed, size.length);
      framed.write('\r\n', size.length + chunk.length, 'latin1');
      ok = this.socket.write(framed);
    } else ok = this.socket.write(chunk);
    if (!ok) this.body!.pause();
  };

  private readonly onBodyEnd = (): void => {
    if (this.chunked) this.socket.writeLatin1('0\r\n\r\n');
    this.detachBody();
  };

  private readonly onBodyError = (): void => {
    this.destroy(new UpstreamError(UPSTREAM_ERRORS.REQUEST_BODY, 'the request body failed before it was sent whole'));
  };

  private detachBody(): void {
    const body = this.body;
    if (body === null) return;
    this.body = null;
    body.off('data', this.onBodyData);
    body.off('end', this.onBodyEnd);
    body.off('error', this.onBodyError);
    // The client's request may still fail (its client hangs up) after we let go of it.
    if (body.listenerCount('error') === 0) body.on('error', ignoreBodyError);
    // Let the rest flow away unread: a paused client request would stall its keep-alive connection.
    body.resume();
  }

  private abortRequest(seq: number, err: Error | undefined): void {
    if (seq !== this.seq || this.handler === null) return;
    this.destroy(err ?? new UpstreamError(UPSTREAM_ERRORS.CLOSED, 'request aborted'), false);
  }

  private readonly resume = (): void => {
    if (!this.paused) return;
    this.paused = false;
    if (this.state === BUSY && this.bodyTimeoutMs > 0) this.setDeadline(this.bodyTimeoutMs, UPSTREAM_ERRORS.BODY_TIMEOUT);
    this.socket.resume();
  };

  // --- parser events (Http1Events; called from inside execute() or finish()) ---

  onMessageBegin(): void {
    // A response begins while none is owed: the backend sent more than it should have. Whatever
    // it is, it must not become the next request's response.
    if (this.state !== BUSY) this.destroy(new UpstreamError(UPSTREAM_ERRORS.PROTOCOL, 'the backend sent bytes past the response it owed'));
  }

  onHead(
    _major: number,
    _minor: number,
    headers: string[],
    _method: string,
    _url: string,
    status: number,
    statusText: string,
    upgrade: boolean,
    keepAlive: boolean,
  ): number {
    const handler = this.handler;
    if (handler === null || this.state !== BUSY) {
      if (this.state !== CLOSED) this.destroy(new UpstreamError(UPSTREAM_ERRORS.PROTOCOL, 'response without a request'));
      return AFTER_HEAD.NO_BODY;
    }
    this.responseStarted = true;
    if (status < 200 || upgrade) {
      // We never ask to switch protocols, so a 101 (or any upgrade) is a broken backend.
      if (status === 101 || upgrade) {
        this.destroy(new UpstreamError(UPSTREAM_ERRORS.PROTOCOL, 'unexpected protocol switch'));
        return AFTER_HEAD.NO_BODY;
      }
      this.interim = true;
      return AFTER_HEAD.NO_BODY;
    }
    this.keepAlive = keepAlive;
    const length = this.scanResponseHeaders(headers, keepAlive);
    if (length === FRAMING_REFUSED) {
      this.destroy(
        new UpstreamError(
          UPSTREAM_ERRORS.PROTOCOL,
          'response framing is ambiguous or unsupported (Content-Length with Transfer-Encoding, or a transfer coding other than chunked)',
        ),
      );
      return AFTER_HEAD.NO_BODY;
    }
    if (this.bodyTimeoutMs > 0) this.setDeadline(this.bodyTimeoutMs, UPSTREAM_ERRORS.BODY_TIMEOUT);
    else this.deadline = 0;
    handler.onHeaders(status, headers, this.resume, statusText);
    if (this.skipBody) return AFTER_HEAD.NO_BODY;
    if (length > 0 && status !== 204 && status !== 304 && this.handler === handler) {
      this.bodyRemaining = length;
      return AFTER_HEAD.STOP;
    }
    return AFTER_HEAD.BODY;
  }

  /**
   * The Content-Length (-1 when absent or when Transfer-Encoding frames the body; llhttp has
   * already refused malformed or conflicting lengths), FRAMING_REFUSED for a head that carries
   * both (the response parser lets that through, see llhttp.ts) or a transfer coding other than
   * chunked (the proxy re-frames bodies and would lose it), and `Keep-Alive: timeout=N`
   * (RFC 2068 §19.7.1), so that the connection is let go before the backend drops it.
   */
  private scanResponseHeaders(headers: readonly string[], keepAlive: boolean): number {
    let length = -1;
    let hasLength = false;
    let chunked = false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      const n = name.length;
      if (n === 14) {
        if (name.toLowerCase() === 'content-length') {
          length = Number(headers[i + 1]);
          hasLength = true;
        }
      } else if (n === 17) {
        if (name.toLowerCase() === 'transfer-encoding') {
          if (chunked || headers[i + 1]!.trim().toLowerCase() !== 'chunked') return FRAMING_REFUSED;
          chunked = true;
        }
      } else if (n === 10 && keepAlive && name.toLowerCase() === 'keep-alive') {
        const value = headers[i + 1]!;
        if (value === this.lastKeepAliveHint) continue;
        this.lastKeepAliveHint = value;
        const m = /timeout\s*=\s*(\d+)/i.exec(value);
        if (m !== null) this.keepAliveMs = Math.min(this.settings.keepAliveTimeoutMs, Number(m[1]) * 1000 - KEEP_ALIVE_MARGIN_MS);
      }
    }
    if (chunked && hasLength) return FRAMING_REFUSED;
    return chunked || !Number.isSafeInteger(length) ? -1 : length;
  }

  onBody(chunk: Buffer): void {
    const handler = this.handler;
    if (handler === null || this.interim) return;
    if (this.bodyTimeoutMs > 0) this.deadline = deadlineIn(this.bodyTimeoutMs);
    if (!handler.onData(chunk) && this.handler === handler && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  onMessageComplete(): void {
    const handler = this.handler;
    // After a head answered STOP llhttp calls the message complete; the body is still to come.
    if (handler === null || this.bodyRemaining > 0) return;
    if (this.interim) {
      this.interim = false;
      return;
    }
    if (this.completeResponse(handler)) this.state = DONE;
  }

  /**
   * The response is over: the handler hears so, and true is returned when the connection may
   * carry another request (the caller releases it once nothing more of the read is left).
   */
  private completeResponse(handler: UpstreamHandler): boolean {
    const reusable = this.keepAlive && this.body === null && this.keepAliveMs > 0;
    this.handler = null;
    this.request = null;
    this.deadline = 0;
    // A backend that answered before reading the whole body cannot take the rest; the
    // connection closes below.
    this.detachBody();
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
    handler.onComplete();
    if (this.state !== BUSY) return false;
    if (!reusable) {
      this.destroy(null);
      return false;
    }
    return true;
  }

  /** Back to the pool, idle (or straight on to a queued request). */
  private release(): void {
    this.reused = true;
    this.state = IDLE;
    this.idleSince = coarseClock();
    this.owner.released(this);
  }

  /** The body bytes `buf[from, to)` of a response read past the parser. */
  private readOwnBody(buf: Buffer, from: number, to: number): void {
    const handler = this.handler!;
    let n = to - from;
    if (n > this.bodyRemaining) n = this.bodyRemaining;
    this.bodyRemaining -= n;
    if (this.bodyTimeoutMs > 0) this.deadline = deadlineIn(this.bodyTimeoutMs);
    // Over TLS a large piece is a view of node's own buffer: nothing to give back.
    const lease = this.readBuffer;
    let more: boolean;
    if (n < LEND_MIN) more = handler.onData(Buffer.from(buf.subarray(from, from + n)));
    else if (lease === undefined) more = handler.onData(buf.subarray(from, from + n));
    else {
      lease.hold();
      more = handler.onData(buf.subarray(from, from + n), lease.release);
    }
    if (this.handler !== handler) return;
    if (this.bodyRemaining === 0) {
      // The parser is ready for the next response as it is (AFTER_HEAD.STOP).
      if (!this.completeResponse(handler)) return;
      // Bytes past the body belong to no request: the connection cannot be trusted with another.
      if (from + n < to) this.destroy(new UpstreamError(UPSTREAM_ERRORS.PROTOCOL, 'the backend sent bytes past the response it owed'));
      else this.release();
      return;
    }
    if (!more && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  private parse(buf: Buffer, from: number, to: number): void {
    const input = from === 0 && to === buf.length ? buf : buf.subarray(from, to);
    const r = this.parser.execute(input);
    if (typeof r !== 'number') {
      if (this.state !== CLOSED) this.destroy(r);
      return;
    }
    // The response ended in this read, and nothing after it did anything untoward.
    if (this.state === DONE) this.release();
    else if (this.bodyRemaining > 0 && r < input.length && this.state === BUSY) this.readOwnBody(buf, from + r, to);
  }

  // --- socket events (TcpEndEvents, and the connect) ---

  private readonly onConnect = (status: number): void => {
    if (this.state === CLOSED) return;
    if (status < 0) return this.destroy(connectError(status, this.settings.host, this.settings.port));
    this.socket.start(this);
    this.onSocketConnect();
  };

  private readonly onSecureConnect = (): void => {
    this.handshaking = false;
    this.onSocketConnect();
  };

  private onSocketConnect(): void {
    if (this.state !== CONNECTING) return;
    const request = this.request!;
    const handler = this.handler!;
    this.send(request, handler);
  }

  onRead(data: Buffer, buffer: ReadBuffer | undefined): void {
    if (this.state === CLOSED) return;
    this.readBuffer = buffer;
    if (this.bodyRemaining > 0) {
      if (this.state === BUSY) this.readOwnBody(data, 0, data.length);
    } else this.parse(data, 0, data.length);
    this.readBuffer = undefined;
  }

  onEnd(): void {
    if (this.state === CLOSED) return;
    // A body delimited by the close ends here; finish() completes it.
    if (this.state === BUSY && this.bodyRemaining === 0) this.parser.finish();
    this.destroy(null);
  }

  onDrain(): void {
    this.body?.resume();
  }

  onFinished(): void {}

  onError(code: string): void {
    const err = this.socketError ?? Object.assign(new Error(`${code} on the connection to the backend`), { code });
    // Failing between the TCP connect and the end of the handshake is the TLS failing (the
    // certificate does not verify, no common protocol): told apart from a refused connection.
    this.destroy(this.handshaking ? tlsHandshakeError(err) : err);
  }

  /** Called by the pool's sweeper: time the current wait or the idle period out. */
  expire(now: number): void {
    const state = this.state;
    if (state === IDLE) {
      if (now - this.idleSince >= this.keepAliveMs) this.destroy(null);
      return;
    }
    if (this.deadline === 0 || now < this.deadline || this.paused) return;
    const what =
      this.deadlineCode === UPSTREAM_ERRORS.CONNECT_TIMEOUT
        ? 'connecting'
        : this.deadlineCode === UPSTREAM_ERRORS.HEADERS_TIMEOUT
          ? 'waiting for the response headers'
          : 'waiting for the response body';
    this.destroy(new UpstreamError(this.deadlineCode, `timed out ${what}`));
  }

  /**
   * Closes the connection for good; the request on it, if any, fails with `err` (or, when the
   * backend merely closed, "closed before the response ended") — or replays, see above.
   */
  destroy(err: Error | null, mayReplay = true): void {
    if (this.state === CLOSED) return;
    this.state = CLOSED;
    this.deadline = 0;
    this.bodyRemaining = 0;
    this.detachBody();
    this.socket.close();
    this.parser.close();
    const handler = this.handler;
    const request = this.request;
    this.handler = null;
    this.request = null;
    this.owner.removed(this);
    if (handler === null) return;
    const error = err ?? new UpstreamError(UPSTREAM_ERRORS.CLOSED, 'the backend closed the connection before the response ended');
    if (
      mayReplay &&
      this.reused &&
      !this.responseStarted &&
      request !== null &&
      request.body === null &&
      REPLAYABLE.has(request.method) &&
      CONNECTION_LOST.has((error as { code?: string }).code ?? '')
    ) {
      this.owner.replay(request, handler);
      return;
    }
    handler.onError(error);
  }
}
