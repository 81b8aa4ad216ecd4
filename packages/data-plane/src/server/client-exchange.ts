/**
 * The built-in server's request and response (http1-server.ts): the ProxyRequest and
 * ProxyResponse subset of node:http's IncomingMessage and ServerResponse, without what the
 * proxy never uses (header objects on the hot path, trailers, implicit headers, setHeader).
 *
 * Response framing follows RFC 9112 §6: a Content-Length from the backend is kept; without one,
 * an HTTP/1.1 client gets the body chunked and an HTTP/1.0 client gets it delimited by the close.
 * HEAD, 1xx, 204 and 304 answers carry no body. The head waits in a string until the first body
 * bytes or the end, so that a small response leaves in one write.
 */
import { EventEmitter } from 'node:events';
import { STATUS_CODES, type IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { ClientSocket, ProxyRequest, ProxyResponse } from '../proxy/exchange.js';
import type { TcpEnd } from '../runtime/tcp-end.js';

/** What a request and its response need of their connection (http1-server-connection.ts). */
export interface ExchangeConnection {
  /** What the request shows of its connection (req.socket). */
  readonly client: ClientSocket;
  /** Where responses are written. */
  readonly out: TcpEnd;
  /** `req`'s body is wanted again (Readable._read). */
  resumeReading(req: ClientRequest): void;
  /** `res` has been written whole. */
  responseDone(res: ClientResponse<AnsweredRequest>): void;
  /** Ends the connection now (ServerResponse.destroy()). */
  destroy(): void;
  /** `Keep-Alive: timeout=N\r\n` for kept-alive answers (empty without an idle timeout). */
  readonly keepAliveHeader: string;
  /** Gives the connection away for an upgrade (see ServerConnection.takeConnection); absent: it cannot be. */
  takeConnection?(res: ClientResponse<AnsweredRequest>): { socket: Socket; head: Buffer } | undefined;
}

/** What a response needs of its request: the method and version decide its framing. */
export type AnsweredRequest = ProxyRequest & { readonly httpVersionMinor: number };

export class ClientRequest extends Readable implements ProxyRequest {
  /** The whole request, body included, has been received. */
  complete = false;
  /** The body's end is not pushed yet: nobody has read it (see received()). */
  private endPending = false;
  private headerObject: IncomingHttpHeaders | undefined;

  constructor(
    private readonly connection: ExchangeConnection,
    readonly method: string,
    readonly url: string,
    readonly rawHeaders: string[],
    readonly httpVersionMajor: number,
    readonly httpVersionMinor: number,
  ) {
    super();
  }

  get socket(): ClientSocket {
    return this.connection.client;
  }

  /** Lower-cased names; repeated headers joined with ", " (Set-Cookie and Cookie aside), as node:http does. */
  get headers(): IncomingHttpHeaders {
    if (this.headerObject !== undefined) return this.headerObject;
    const out: Record<string, string | string[]> = {};
    const raw = this.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      const value = raw[i + 1]!;
      const had = out[name];
      if (name === 'set-cookie') out[name] = had === undefined ? [value] : [...(had as string[]), value];
      else if (had === undefined) out[name] = value;
      else out[name] = `${had as string}${name === 'cookie' ? '; ' : ', '}${value}`;
    }
    this.headerObject = out;
    return out;
  }

  /**
   * The whole request has been received. The stream's end is pushed now only if someone reads the
   * body, else when someone first does (_read): ending a Readable costs about two microseconds of
   * state changes and ticks, and most requests have no body that anyone reads.
   */
  received(): void {
    this.complete = true;
    if (this.readableFlowing === true || this.readableLength > 0 || this.listenerCount('data') > 0 || this.listenerCount('readable') > 0) this.push(null);
    else this.endPending = true;
  }

  override _read(): void {
    if (this.endPending) {
      this.endPending = false;
      this.push(null);
      return;
    }
    this.connection.resumeReading(this);
  }

  /**
   * A client that left is an error only to whoever listens for it when it is reported. The
   * check is made here, when the error is emitted (a tick after destroy()), not when destroy()
   * is called: a reader that stops listening in between — the upstream connection lets go of a
   * body when its exchange is cut short — must not turn the hang-up into an uncaught exception.
   */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'error' && this.listenerCount('error') === 0) return false;
    return super.emit(event, ...args);
  }
}

/** Body chunks up to this size are copied to leave with their framing in one write (writeCopy). */
const COPY_LIMIT = 16 * 1024;
const CRLF = Buffer.from('\r\n', 'latin1');

const FRAMING_NONE = 0;
const FRAMING_LENGTH = 1;
const FRAMING_CHUNKED = 2;
const FRAMING_CLOSE = 3;

let dateSecond = 0;
let dateValue = '';
/** The Date header value, formatted once a second. */
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateValue = new Date(now).toUTCString();
  }
  return dateValue;
}

function emitClose(res: ClientResponse): void {
  res.emit('close');
}

function hasLineBreak(value: string): boolean {
  return value.indexOf('\n') !== -1 || value.indexOf('\r') !== -1;
}

export class ClientResponse<R extends AnsweredRequest = ClientRequest> extends EventEmitter implements ProxyResponse {
  statusCode = 200;
  headersSent = false;
  writableFinished = false;
  destroyed = false;
  /** end() was called. */
  finished = false;
  /** 'close' has been emitted (once: at the end, or when the connection goes). */
  closeEmitted = false;
  /** The head, waiting to leave with the first body bytes. */
  private head: string | null = null;
  private framing = FRAMING_NONE;

  constructor(
    readonly req: R,
    private readonly connection: ExchangeConnection,
    /** The connection may carry another request after this one. */
    public keepAlive: boolean,
  ) {
    super();
  }

  writeHead(statusCode: number, statusMessage?: string | string[], headers?: string[]): this {
    if (this.headersSent) throw Object.assign(new Error('cannot write the response head twice'), { code: 'ERR_HTTP_HEADERS_SENT' });
    let reason: string | undefined;
    let list: readonly string[];
    if (typeof statusMessage === 'string') {
      reason = statusMessage;
      list = headers ?? [];
    } else list = statusMessage ?? [];
    if (!Number.isInteger(statusCode) || statusCode < 100 || statusCode > 999)
      throw Object.assign(new Error(`invalid status code ${statusCode}`), { code: 'ERR_HTTP_INVALID_STATUS_CODE' });
    if (reason !== undefined && hasLineBreak(reason)) throw Object.assign(new Error('invalid status message'), { code: 'ERR_INVALID_CHAR' });
    this.statusCode = statusCode;
    let head = `HTTP/1.1 ${statusCode} ${reason ?? STATUS_CODES[statusCode] ?? 'unknown'}\r\n`;
    let length = false;
    let date = false;
    for (let i = 0; i < list.length; i += 2) {
      const name = list[i]!;
      const value = list[i + 1]!;
      // What node's writeHead refuses too: a line break would split the response.
      if (hasLineBreak(name) || hasLineBreak(value)) throw Object.assign(new Error(`invalid header ${JSON.stringify(name)}`), { code: 'ERR_INVALID_CHAR' });
      const n = name.length;
      if (n === 14) {
        if (name.toLowerCase() === 'content-length') length = true;
      } else if (n === 4) {
        if (name.toLowerCase() === 'date') date = true;
      } else if (n === 10 && name.toLowerCase() === 'connection') {
        // The connection header is this server's to write; `close` asks it to close after this answer.
        if (value.toLowerCase().includes('close')) this.keepAlive = false;
        continue;
      }
      head += `${name}: ${value}\r\n`;
    }
    const req = this.req;
    const noBody = req.method === 'HEAD' || statusCode === 204 || statusCode === 304 || statusCode < 200;
    if (noBody) this.framing = FRAMING_NONE;
    else if (length) this.framing = FRAMING_LENGTH;
    else if (req.httpVersionMajor === 1 && req.httpVersionMinor >= 1) {
      this.framing = FRAMING_CHUNKED;
      head += 'Transfer-Encoding: chunked\r\n';
    } else {
      this.framing = FRAMING_CLOSE;
      this.keepAlive = false;
    }
    if (!date) head += `Date: ${httpDate()}\r\n`;
    // Like node:http: say how long an idle connection stays, so that clients stop reusing it
    // before it closes under them.
    if (!this.keepAlive) head += 'Connection: close\r\n';
    else head += req.httpVersionMinor === 0 ? `Connection: keep-alive\r\n${this.connection.keepAliveHeader}` : this.connection.keepAliveHeader;
    this.head = `${head}\r\n`;
    this.headersSent = true;
    return this;
  }

  write(chunk: Buffer | string, callback?: (err?: Error | null) => void): boolean {
    if (this.finished || this.destroyed) {
      if (callback !== undefined) process.nextTick(callback, Object.assign(new Error('write after end'), { code: 'ERR_STREAM_WRITE_AFTER_END' }));
      return false;
    }
    if (!this.headersSent) this.writeHead(this.statusCode);
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    const length = data.length;
    if (this.framing === FRAMING_NONE || length === 0) {
      callback?.();
      return true;
    }
    if (length <= COPY_LIMIT) return this.writeCopy(data, callback);
    // A large chunk is not copied: it leaves as it is, between the head and its framing, in one
    // write of several buffers.
    const chunked = this.framing === FRAMING_CHUNKED;
    let prefix = this.head ?? '';
    this.head = null;
    if (chunked) prefix += `${length.toString(16)}\r\n`;
    const chunks: Buffer[] = prefix === '' ? [data] : [Buffer.from(prefix, 'latin1'), data];
    if (chunked) chunks.push(CRLF);
    return this.connection.out.writev(chunks, callback);
  }

  /**
   * A small body chunk leaves in one buffer with the head (if still waiting) and its chunk framing:
   * one plain write, instead of a corked writev and its bookkeeping, for the price of a copy. The
   * copy is this response's own, so `callback` (a read buffer's release) is called at once.
   */
  private writeCopy(chunk: Buffer, callback: ((err?: Error | null) => void) | undefined): boolean {
    const chunked = this.framing === FRAMING_CHUNKED;
    const length = chunk.length;
    let prefix = this.head ?? '';
    this.head = null;
    if (chunked) prefix += `${length.toString(16)}\r\n`;
    const out = Buffer.allocUnsafe(prefix.length + length + (chunked ? 2 : 0));
    out.write(prefix, 0, 'latin1');
    chunk.copy(out, prefix.length);
    if (chunked) out.write('\r\n', prefix.length + length, 'latin1');
    callback?.();
    return this.connection.out.write(out);
  }

  end(chunk?: Buffer | string): this {
    if (this.finished || this.destroyed) return this;
    if (chunk !== undefined && chunk.length > 0) this.write(chunk);
    else if (!this.headersSent) this.writeHead(this.statusCode);
    this.finished = true;
    // One write: what is left of the head, then the last chunk's framing.
    const last = (this.head ?? '') + (this.framing === FRAMING_CHUNKED ? '0\r\n\r\n' : '');
    this.head = null;
    if (last !== '') this.connection.out.writeLatin1(last);
    this.writableFinished = true;
    this.emit('finish');
    this.connection.responseDone(this);
    this.emitCloseOnce();
    return this;
  }

  /** For an upgrade request in its turn, with nothing written yet: its connection, now the caller's. */
  takeConnection(): { socket: Socket; head: Buffer } | undefined {
    if (this.destroyed || this.finished) return undefined;
    return this.connection.takeConnection?.(this);
  }

  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.connection.destroy();
    return this;
  }

  /** The connection is gone before or after the end: 'close' once, as node:http emits it (to the listeners there are by then). */
  emitCloseOnce(): void {
    if (this.closeEmitted) return;
    this.closeEmitted = true;
    // A tick costs about a microsecond a response; most have nobody listening by their end.
    if (this.listenerCount('close') > 0) process.nextTick(emitClose, this);
  }
}
