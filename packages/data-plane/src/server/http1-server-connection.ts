/**
 * One client connection of the built-in server (http1-server.ts): node's llhttp parses requests
 * (strict, as node:http runs it), responses go out in request order, and the limits node:http
 * enforces are enforced here the same way:
 *
 * - a malformed or ambiguous request gets 400 (431 for an oversized head, 413 for oversized chunk
 *   extensions) and the connection closes; an HTTP/1.1 request without Host gets 400;
 * - a head not received within headersTimeoutMs of its first byte (or of the connection's
 *   start), or a whole request not within requestTimeoutMs, gets 408 and the connection closes;
 * - an idle keep-alive connection closes after keepAliveTimeoutMs;
 * - `Expect: 100-continue` is answered when the request's turn comes; other expectations get 417;
 * - pipelined requests wait their turn; past MAX_PIPELINED waiting ones the socket stops reading;
 * - bytes after a request that asked to close (`Connection: close`) are ignored, and the requests
 *   before them answered, as nginx and HAProxy do;
 * - an upgrade request, in its turn, may be given its connection (ClientResponse.takeConnection:
 *   the forwarder tunnels WebSocket upgrades); one that is not is served as a plain request and
 *   the connection closes after it. Bytes the client sends after the upgrade request are kept for
 *   whoever takes the connection (up to MAX_UPGRADE_HEAD).
 *
 * No event of the socket, the parser or a request body may reach the process as an uncaught
 * error: a client that hangs up mid-body ends its request with an error that only a listener
 * present at that moment hears (client-exchange.ts).
 *
 * Requests are handed to the listener after the parser has returned, never from inside it, so
 * the listener may answer (and the connection may go on to the next request) at once.
 */
import type { Socket } from 'node:net';
import { AFTER_HEAD, Http1Parser, type Http1Events } from '../http1/llhttp.js';
import type { ClientSocket, RequestListener } from '../proxy/exchange.js';
import type { TcpEnd, TcpEndEvents } from '../runtime/tcp-end.js';
import { type AnsweredRequest, ClientRequest, ClientResponse, type ExchangeConnection } from './client-exchange.js';

export interface ServerConnectionSettings {
  readonly maxHeaderSize: number;
  readonly headersTimeoutMs: number;
  /** 0: none. */
  readonly requestTimeoutMs: number;
  /** 0: none. */
  readonly keepAliveTimeoutMs: number;
}

/** What a connection needs of its server. */
export interface ConnectionServer {
  readonly settings: ServerConnectionSettings;
  readonly listener: RequestListener;
  /** The server is draining: no more keep-alive. */
  readonly closing: boolean;
  /** performance.now() as of the server's last tick. */
  readonly now: number;
  /** `Keep-Alive: timeout=N\r\n` for kept-alive answers, or '' (see ExchangeConnection). */
  readonly keepAliveHeader: string;
  removed(conn: ServerConnection): void;
  /** `conn` gave its socket away (an upgrade); the server still closes it when it must. */
  handedOff(conn: ServerConnection, socket: Socket): void;
}

/** Pipelined requests waiting for their turn before the socket stops reading. */
const MAX_PIPELINED = 16;
/** Bytes a client may send after its upgrade request before the upgrade is answered. */
const MAX_UPGRADE_HEAD = 64 * 1024;

const RESPONSES = {
  badRequest: 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n',
  headerTooLarge: 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n',
  chunkExtensionsTooLarge: 'HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\n\r\n',
  timeout: 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n',
  expectationFailed: 'HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
  continue: 'HTTP/1.1 100 Continue\r\n\r\n',
} as const;

/** The value of the first header named `lower` (a lower-case name), or undefined. */
function headerValue(raw: readonly string[], lower: string): string | undefined {
  const n = lower.length;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === n && name.toLowerCase() === lower) return raw[i + 1];
  }
  return undefined;
}

export class ServerConnection implements ExchangeConnection, ClientSocket, Http1Events, TcpEndEvents {
  private readonly parser: Http1Parser;
  /** Nothing more is parsed or answered (destroy() was called, or the connection failed). */
  private closed = false;
  /** The connection's end has been cleaned up (gone()). */
  private isGone = false;
  private address: string | undefined;
  /** The response being produced now. */
  private current: ClientResponse | null = null;
  /** Parsed requests waiting for their turn, in order. */
  private readonly waiting: ClientResponse[] = [];
  /** The request whose body the parser is reading. */
  private parsing: ClientRequest | null = null;
  /** When the request being received began (ms, server clock); 0: none in progress. */
  private requestStartedAt: number;
  private headersDone = false;
  private idleSince: number;
  private readEnded = false;
  /** The socket is paused: see updateReading(). */
  private paused = false;
  /** The body reader of the request being parsed is full (its push() said so). */
  private bodyFull = false;
  /** No more requests are read (an upgrade, a close asked for, an error answered). */
  private noMoreRequests = false;
  /** The upgrade request received (the last one a connection reads), and the bytes that followed it. */
  private upgradeRequest: ClientRequest | null = null;
  private upgradeHead: Buffer[] = [];
  private upgradeHeadBytes = 0;
  /** Requests expecting `100 Continue` when their turn comes. */
  private readonly expectsContinue = new WeakSet<ClientRequest>();

  /**
   * `out`: the client connection, a libuv handle (raw-tcp.ts) or a net.Socket (socket-end.ts, for
   * TLS and where handles are not used), reading into the shared buffer: the parser copies what
   * it keeps.
   */
  constructor(
    readonly out: TcpEnd,
    private readonly server: ConnectionServer,
  ) {
    this.parser = new Http1Parser('request', this, server.settings.maxHeaderSize);
    // node:http counts a new connection's head time from the connection's start.
    this.requestStartedAt = server.now;
    this.idleSince = server.now;
    out.start(this);
  }

  /** What requests show of the connection (req.socket): itself. */
  get client(): ClientSocket {
    return this;
  }

  /** The client's address, asked of the kernel once (the forwarder asks for every request). */
  get remoteAddress(): string | undefined {
    if (this.address === undefined && !this.closed) this.address = this.out.peer()?.address;
    return this.address;
  }

  get destroyed(): boolean {
    return this.closed;
  }

  get keepAliveHeader(): string {
    return this.server.keepAliveHeader;
  }

  /** No request in progress or waiting: closing it loses nothing. */
  get idle(): boolean {
    return this.current === null && this.waiting.length === 0 && this.requestStartedAt === 0;
  }

  // --- parser events (Http1Events) ---

  onMessageBegin(): void {
    // Exact, not the tick's clock: a deadline measured from a stale start would fire early.
    this.requestStartedAt = performance.now();
    this.headersDone = false;
  }

  onHead(
    major: number,
    minor: number,
    headers: string[],
    method: string,
    url: string,
    _status: number,
    _statusText: string,
    upgrade: boolean,
    keepAlive: boolean,
  ): number {
    this.headersDone = true;
    if (this.noMoreRequests || this.closed) return AFTER_HEAD.NO_BODY;
    if (method === 'CONNECT' || method === '') {
      this.refuse(RESPONSES.badRequest);
      return AFTER_HEAD.NO_BODY;
    }
    const req = new ClientRequest(this, method, url, headers, major, minor);
    if (major === 1 && minor === 1 && headerValue(headers, 'host') === undefined) {
      this.refuse(RESPONSES.badRequest);
      return AFTER_HEAD.NO_BODY;
    }
    const expect = headerValue(headers, 'expect');
    if (expect !== undefined && major === 1 && minor >= 1) {
      if (expect.toLowerCase() !== '100-continue') {
        this.refuse(RESPONSES.expectationFailed);
        return AFTER_HEAD.NO_BODY;
      }
      this.expectsContinue.add(req);
    }
    // After an upgrade request llhttp reads the rest as another protocol: serve it, then close.
    // After `Connection: close` (or an HTTP/1.0 request without keep-alive) nothing more is read.
    if (upgrade || !keepAlive) this.noMoreRequests = true;
    if (upgrade) this.upgradeRequest = req;
    const res = new ClientResponse(req, this, keepAlive && !upgrade && !this.server.closing);
    this.parsing = req;
    this.waiting.push(res);
    return AFTER_HEAD.BODY;
  }

  onBody(chunk: Buffer): void {
    const req = this.parsing;
    if (req !== null && !req.push(chunk)) {
      this.bodyFull = true;
      this.updateReading();
    }
  }

  onMessageComplete(): void {
    const req = this.parsing;
    this.parsing = null;
    this.bodyFull = false;
    this.requestStartedAt = 0;
    if (req === null) return;
    req.received();
  }

  // --- connection events (TcpEndEvents) ---

  /** Bytes from the client, valid until this returns (the shared buffer: what is kept is copied). */
  onRead(data: Buffer): void {
    if (this.closed) return;
    // After an upgrade request the bytes are the other protocol's, kept for whoever takes the
    // connection; after a refusal nothing more is parsed and the bytes are dropped.
    if (this.noMoreRequests && this.parsing === null) {
      if (this.upgradeRequest !== null) this.keepUpgradeBytes(data);
      return;
    }
    const r = this.parser.execute(data);
    if (typeof r !== 'number') return this.onParseError(r.code);
    if (r < data.length && this.upgradeRequest !== null) this.keepUpgradeBytes(data.subarray(r));
    this.next();
  }

  private keepUpgradeBytes(data: Buffer): void {
    this.upgradeHeadBytes += data.length;
    if (this.upgradeHeadBytes > MAX_UPGRADE_HEAD) return this.destroy();
    this.upgradeHead.push(Buffer.from(data));
  }

  /**
   * Gives the connection of `res`'s upgrade request to the caller: nothing more is read or written
   * here, the socket (and the bytes the client sent after its request) is the caller's to close.
   * undefined unless `res` answers an upgrade request, is the one being answered, and nothing of it
   * was written.
   */
  takeConnection(res: ClientResponse<AnsweredRequest>): { socket: Socket; head: Buffer } | undefined {
    const current = this.current;
    if (this.closed || current === null || res !== current || current.req !== this.upgradeRequest || res.headersSent) return undefined;
    this.closed = true;
    this.isGone = true;
    this.current = null;
    // Paused until the caller reads it (pipe() resumes it): nothing may flow to no listener.
    const socket = this.out.toSocket();
    this.parser.close();
    this.server.handedOff(this, socket);
    const head = Buffer.concat(this.upgradeHead);
    this.upgradeHead = [];
    return { socket, head };
  }

  private onParseError(code: string): void {
    // Bytes after a request that asked to close: they are not read (RFC 9112 §9.6), and the
    // requests already received are still answered.
    if (code === 'HPE_CLOSED_CONNECTION' && this.noMoreRequests) {
      this.next();
      return;
    }
    const response =
      code === 'HPE_HEADER_OVERFLOW'
        ? RESPONSES.headerTooLarge
        : code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW'
          ? RESPONSES.chunkExtensionsTooLarge
          : RESPONSES.badRequest;
    this.refuse(response);
  }

  /**
   * Answers with one of RESPONSES and closes — unless a response is already on its way, which
   * an error line must not corrupt (as node:http does it).
   */
  private refuse(response: string): void {
    if (this.closed) return;
    this.noMoreRequests = true;
    const current = this.current;
    if (current === null || !current.headersSent) this.out.writeLatin1(response);
    this.destroy();
  }

  /**
   * The client closed its side. As node:http does by default (httpAllowHalfOpen off), requests
   * not yet answered are abandoned: the client will not read their answers.
   */
  onEnd(): void {
    this.readEnded = true;
    if (this.closed) return;
    this.parser.finish();
    if (this.current !== null || this.waiting.length > 0 || this.parsing !== null) return this.destroy();
    this.endSocket();
  }

  onError(): void {
    this.destroy();
  }

  onDrain(): void {
    this.current?.emit('drain');
  }

  /** Our FIN went out after the last answer (endSocket): the connection is done. */
  onFinished(): void {
    this.destroy();
  }

  /**
   * The connection is closed: what was under way is abandoned. Run a tick after the close, as a
   * socket's 'close' is, so that nothing is torn down under the parser or a response's write.
   */
  private readonly gone = (): void => {
    if (this.isGone) return;
    this.isGone = true;
    this.server.removed(this);
    this.parser.close();
    const current = this.current;
    this.current = null;
    // The response first (the forwarder learns its client left), then the request body.
    if (current !== null) {
      current.destroyed = true;
      current.emitCloseOnce();
      if (!current.req.complete) current.req.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    }
    for (const res of this.waiting.splice(0)) {
      if (!res.req.complete) res.req.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    }
    this.parsing = null;
  };

  // --- the exchange in turn ---

  /** Starts the next waiting request if none is being answered. */
  private next(): void {
    while (this.current === null && this.waiting.length > 0 && !this.closed) {
      const res = this.waiting.shift()!;
      this.current = res;
      const req = res.req;
      if (this.expectsContinue.has(req) && !req.complete) this.out.writeLatin1(RESPONSES.continue);
      this.server.listener(req, res);
    }
    this.updateReading();
  }

  responseDone(done: ClientResponse<AnsweredRequest>): void {
    const res = this.current;
    if (res !== done || res === null) return;
    this.current = null;
    const req = res.req;
    // A body nobody read (a local answer to a POST) is read and dropped, as node:http does, so
    // the next request on the connection can be parsed.
    if (!req.complete) req.resume();
    if (!res.keepAlive || this.server.closing) {
      this.noMoreRequests = true;
      for (const waiting of this.waiting.splice(0)) if (!waiting.req.complete) waiting.req.destroy();
      this.endSocket();
      return;
    }
    this.idleSince = this.server.now;
    if (this.waiting.length > 0) {
      // Not from inside the listener that just answered: one pipelined request per tick.
      process.nextTick(() => this.next());
      return;
    }
    if (this.readEnded) this.endSocket();
  }

  /** Sends what is queued and a FIN, then closes (onFinished: a client that keeps its side open cannot hold it). */
  private endSocket(): void {
    this.out.end();
  }

  /** The server is draining: responses not yet started say `Connection: close`. */
  stopKeepAlive(): void {
    if (this.current !== null && !this.current.headersSent) this.current.keepAlive = false;
    for (const res of this.waiting) res.keepAlive = false;
  }

  /** Reads while the body being parsed has room and not too many requests wait their turn. */
  private updateReading(): void {
    const read = !this.bodyFull && this.waiting.length < MAX_PIPELINED;
    if (read === !this.paused) return;
    this.paused = !read;
    if (read) this.out.resume();
    else this.out.pause();
  }

  resumeReading(req: ClientRequest): void {
    if (req !== this.parsing) return;
    this.bodyFull = false;
    this.updateReading();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.out.close();
    process.nextTick(this.gone);
  }

  /** Called by the server's tick: time the head, the request or the idle period out. */
  expire(now: number): void {
    if (this.closed) return;
    const { headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs } = this.server.settings;
    if (this.requestStartedAt > 0) {
      const elapsed = now - this.requestStartedAt;
      if ((!this.headersDone && elapsed > headersTimeoutMs) || (requestTimeoutMs > 0 && this.parsing !== null && elapsed > requestTimeoutMs))
        this.refuse(RESPONSES.timeout);
      return;
    }
    if (this.idle && keepAliveTimeoutMs > 0 && now - this.idleSince > keepAliveTimeoutMs) this.destroy();
  }
}
