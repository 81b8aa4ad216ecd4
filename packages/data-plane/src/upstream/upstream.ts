/**
 * The seam between the forwarder and an HTTP/1.1 client: one `Upstream` per backend address
 * (a keep-alive connection pool), driven through a handler whose methods follow undici's legacy
 * dispatch handler, so either client implementation (http1-pool.ts, undici-upstream.ts) serves
 * the same forwarder. Response headers arrive as latin1 strings in one flat `[name, value, …]`
 * array, which is what node's `writeHead` takes back without re-encoding.
 */
import type { Readable } from 'node:stream';
import type { TunnelHandler } from './tunnel.js';

export interface UpstreamRequest {
  /** Origin-form request target (`/path?query`). */
  readonly path: string;
  readonly method: string;
  /** Flat `[name, value, …]`; framing headers (Transfer-Encoding) are the client's to add. */
  readonly headers: readonly string[];
  /** The request body, streamed with back-pressure; null when there is none. */
  readonly body: Readable | null;
  /** Time allowed for the response headers once the request is sent (ms); 0: none; absent: the pool's. */
  readonly headersTimeout?: number;
  /** Longest silence between two response body chunks (ms); 0: none; absent: the pool's. */
  readonly bodyTimeout?: number;
}

export interface UpstreamHandler {
  /** The request has a connection and is being sent; `abort` ends it (and onError follows). */
  onConnect(abort: (err?: Error) => void): void;
  /**
   * The final response head (1xx interim answers are passed over). Return false to stop;
   * `resume` restarts a response paused by onData returning false.
   */
  onHeaders(statusCode: number, rawHeaders: readonly string[], resume: () => void, statusText: string): boolean;
  /**
   * A body chunk; false: pause until `resume` is called. With `release`, the chunk is a view of a
   * read buffer the client will use again: call it once, when the chunk has been written (a
   * write callback) or dropped. Forgetting it costs only that buffer, left to the collector.
   */
  onData(chunk: Buffer, release?: () => void): boolean;
  /** The response is complete; `trailers` (flat `[name, value, …]`): the trailer fields an HTTP/2 backend sent, if any. */
  onComplete(trailers?: readonly string[]): void;
  /** Ends the request unsuccessfully; nothing else is called after it. */
  onError(err: Error): void;
}

export interface Upstream {
  dispatch(request: UpstreamRequest, handler: UpstreamHandler): void;
  /** Connections open (or opening) now, tunnels aside: for lb_dp_upstream_connections. */
  readonly openConnections: number;
  /** Opens an upgraded connection (WebSocket) of its own, sending `request` (its body is not sent). */
  tunnel(request: UpstreamRequest, handler: TunnelHandler): void;
  /** No new requests; resolves once queued and in-flight ones, and tunnels, have finished. */
  close(): Promise<void>;
  /** Ends every connection and tunnel now; requests in flight get an error. */
  destroy(): Promise<void>;
}
