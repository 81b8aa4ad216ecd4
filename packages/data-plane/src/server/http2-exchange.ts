/**
 * One HTTP/2 stream seen as the ProxyRequest/ProxyResponse pair the forwarder takes (exchange.ts),
 * so an HTTP/2 request runs the very path an HTTP/1.1 one does: routing, picking, retries,
 * breakers, rate limits, accounting, access log.
 *
 * The request's header list is turned into the HTTP/1.1 view the forwarder reads: pseudo-headers
 * out, `:authority` as Host, cookie fields joined with `; ` (RFC 9113 §8.2.3), and a body without
 * Content-Length marked `Transfer-Encoding: chunked` so that an HTTP/1.1 backend gets it framed
 * (what nginx does). nghttp2 has already refused what HTTP/2 forbids: upper-case or CR/LF in
 * names, connection-specific fields, TE other than `trailers`, a Content-Length the DATA frames
 * disagree with (RFC 9113 §8.2, §8.1.1) — the h2→h1 downgrade smuggling tools.
 *
 * The response head is held until the first body bytes or the end, so that a response without a
 * body (a gRPC trailers-only answer, a local reply) goes out as one HEADERS frame with END_STREAM.
 * Trailers (passTrailers) go out after the body when the client said it takes them (`TE: trailers`).
 */
import { EventEmitter } from 'node:events';
import { constants, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { http2HeaderObject } from '../http2/header-fields.js';
import type { ProxyRequest, ProxyResponse } from '../proxy/exchange.js';
import { coarseClock } from '../upstream/connection-sweeper.js';

/** grpc-timeout (`1*8DIGIT unit`, units H M S m u n) in ms, or undefined when absent or malformed. */
export function grpcTimeoutMs(value: string | undefined): number | undefined {
  if (value === undefined || value.length < 2 || value.length > 9) return undefined;
  const amount = Number(value.slice(0, -1));
  if (!Number.isInteger(amount) || amount < 0) return undefined;
  switch (value.charCodeAt(value.length - 1)) {
    case 72 /* H */:
      return amount * 3_600_000;
    case 77 /* M */:
      return amount * 60_000;
    case 83 /* S */:
      return amount * 1000;
    case 109 /* m */:
      return amount;
    case 117 /* u */:
      return Math.ceil(amount / 1000);
    case 110 /* n */:
      return Math.ceil(amount / 1_000_000);
    default:
      return undefined;
  }
}

/** The request side of a stream: its headers as the forwarder reads them, its body as a Readable. */
export class Http2ClientRequest extends Readable implements ProxyRequest {
  readonly method: string | undefined;
  readonly url: string | undefined;
  readonly rawHeaders: string[];
  readonly httpVersionMajor = 2;
  /** A gRPC call (content-type application/grpc…): its local replies are gRPC statuses. */
  readonly grpc: boolean;
  /** What the call's grpc-timeout allows (ms); undefined: no deadline. */
  readonly deadlineMs: number | undefined;
  /** The client takes trailers (`TE: trailers`, which every gRPC client sends). */
  readonly trailersAllowed: boolean;
  /** coarseClock() when the client last sent something on this stream (its idle limit, http2-server.ts). */
  lastActivity = coarseClock();
  private headerObject: IncomingHttpHeaders | undefined;
  private flowing = false;
  /** The request ended with its headers and nobody has read the body yet: its end is pushed on the first read (see ClientRequest.received). */
  private endPending: boolean;

  constructor(
    readonly stream: ServerHttp2Stream,
    readonly socket: Socket,
    headers: IncomingHttpHeaders,
    raw: readonly string[],
    endStream: boolean,
  ) {
    super();
    this.method = headers[':method'];
    this.url = headers[':path'];
    const view: string[] = [];
    let authority = headers[':authority'];
    let cookie: string | undefined;
    let hasLength = false;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      if (name.charCodeAt(0) === 58 /* : */) continue;
      const value = raw[i + 1]!;
      if (name === 'cookie') cookie = cookie === undefined ? value : `${cookie}; ${value}`;
      // The same host twice is one Host; two different ones stay two, and the forwarder refuses them.
      else if (name === 'host' && value === authority) authority = undefined;
      else {
        if (name === 'content-length') hasLength = true;
        view.push(name, value);
      }
    }
    if (authority !== undefined) view.push('host', authority);
    if (cookie !== undefined) view.push('cookie', cookie);
    if (!endStream && !hasLength) view.push('transfer-encoding', 'chunked');
    this.rawHeaders = view;
    const contentType = headers['content-type'];
    this.grpc = contentType?.startsWith('application/grpc') === true;
    this.trailersAllowed = headers.te === 'trailers';
    this.deadlineMs = this.grpc ? grpcTimeoutMs(headers['grpc-timeout'] as string | undefined) : undefined;
    // Ending a Readable costs state changes and ticks; most requests end with their headers and
    // nobody reads their (empty) body, so the end is pushed only when someone does.
    this.endPending = endStream;
  }

  get headers(): IncomingHttpHeaders {
    if (this.headerObject !== undefined) return this.headerObject;
    const out: Record<string, string | string[]> = {};
    const raw = this.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      const had = out[name];
      out[name] = had === undefined ? raw[i + 1]! : `${had as string}, ${raw[i + 1]!}`;
    }
    this.headerObject = out;
    return out;
  }

  override _read(): void {
    if (this.endPending) {
      this.endPending = false;
      this.push(null);
      return;
    }
    if (this.flowing) {
      this.stream.resume();
      return;
    }
    this.flowing = true;
    const stream = this.stream;
    // An empty body already ended (a DATA frame with nothing but END_STREAM): node has emitted 'end' already.
    if (stream.readableEnded) {
      this.push(null);
      return;
    }
    stream.on('data', (chunk: Buffer) => {
      this.lastActivity = coarseClock();
      if (!this.push(chunk)) stream.pause();
    });
    stream.once('end', () => this.push(null));
  }

  /** The stream closed before its body ended: whoever reads the body hears it, nobody else. */
  cut(): void {
    // A body that ended (read or not) was received whole: there is nothing to cut.
    if (this.endPending || this.readableEnded || this.destroyed) return;
    this.destroy(this.listenerCount('error') > 0 ? new Error('the client reset the stream') : undefined);
  }

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'error' && this.listenerCount('error') === 0) return false;
    return super.emit(event, ...args);
  }
}

function emitDrain(this: ServerHttp2Stream & { [kResponse]?: Http2ClientResponse }): void {
  const res = this[kResponse];
  if (res === undefined) return;
  // The client took what was queued: a slow reader is not a silent one.
  res.lastActivity = coarseClock();
  res.emit('drain');
}

function sendTrailers(this: ServerHttp2Stream & { [kResponse]?: Http2ClientResponse }): void {
  const res = this[kResponse]!;
  const trailers: OutgoingHttpHeaders = Object.create(null);
  if (res.trailers !== undefined) http2HeaderObject(res.trailers, trailers);
  try {
    this.sendTrailers(trailers);
  } catch {
    this.close(constants.NGHTTP2_INTERNAL_ERROR);
  }
}

const kResponse = Symbol('lb.http2Response');

/** The response side of a stream. */
export class Http2ClientResponse extends EventEmitter implements ProxyResponse {
  statusCode = 200;
  /** The head, until it goes out with the first body bytes or the end. */
  private head: OutgoingHttpHeaders | undefined;
  /** Set by passTrailers: sent after the body when the client takes trailers. */
  trailers: readonly string[] | undefined;
  /** coarseClock() when the proxy last sent something on this stream, or its start. */
  lastActivity = coarseClock();
  private responded = false;

  constructor(
    readonly stream: ServerHttp2Stream,
    readonly req: Http2ClientRequest,
  ) {
    super();
    (stream as ServerHttp2Stream & { [kResponse]?: Http2ClientResponse })[kResponse] = this;
    stream.on('drain', emitDrain);
  }

  get headersSent(): boolean {
    return this.head !== undefined || this.responded;
  }

  get destroyed(): boolean {
    return this.stream.destroyed;
  }

  get writableFinished(): boolean {
    return this.stream.writableFinished;
  }

  writeHead(statusCode: number, statusOrHeaders?: string | string[], headers?: string[]): this {
    const list = typeof statusOrHeaders === 'string' ? headers : statusOrHeaders;
    this.statusCode = statusCode;
    const head: OutgoingHttpHeaders = Object.create(null);
    head[':status'] = statusCode;
    if (list !== undefined) http2HeaderObject(list, head);
    this.head = head;
    return this;
  }

  passTrailers(trailers: readonly string[]): void {
    this.trailers = trailers;
  }

  /** Sends the held head; false when the stream is gone or refused it (then it is reset). */
  private respond(endStream: boolean): boolean {
    const stream = this.stream;
    const head = this.head ?? { ':status': this.statusCode };
    this.head = undefined;
    this.responded = true;
    if (stream.destroyed || stream.closed) return false;
    const waitForTrailers = !endStream && this.req.trailersAllowed;
    try {
      stream.respond(head, { endStream, waitForTrailers });
    } catch {
      // A field value node will not put on the wire (a backend's): the client sees the stream fail.
      stream.close(constants.NGHTTP2_INTERNAL_ERROR);
      return false;
    }
    if (waitForTrailers) stream.once('wantTrailers', sendTrailers);
    return true;
  }

  write(chunk: Buffer | string, callback?: (err?: Error | null) => void): boolean {
    this.lastActivity = coarseClock();
    if (!this.responded && !this.respond(false)) {
      callback?.();
      return true;
    }
    if (this.stream.destroyed) {
      callback?.();
      return true;
    }
    return this.stream.write(chunk, callback);
  }

  end(chunk?: Buffer | string): this {
    const empty = chunk === undefined || chunk.length === 0;
    if (!this.responded) {
      // Nothing but a head (and maybe trailers): one HEADERS frame ends the stream, unless trailers follow.
      const endStream = empty && (this.trailers === undefined || !this.req.trailersAllowed);
      if (!this.respond(endStream) || endStream) return this;
    }
    const stream = this.stream;
    if (!stream.destroyed) {
      if (empty) stream.end();
      else stream.end(chunk);
    }
    return this;
  }

  destroy(_err?: Error): this {
    const stream = this.stream;
    if (!stream.destroyed) stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    return this;
  }
}
