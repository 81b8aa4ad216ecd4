/**
 * What the forwarder needs of a client request and its response: the subset of node:http's
 * IncomingMessage and ServerResponse that both client-side servers provide — node:http itself
 * (`--http-server node`) and the data plane's own (http1-server.ts). Keeping the forwarder to
 * this subset is what lets either run it.
 */
import type { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';

/** What a request tells of its client's connection (a node:net Socket is one). */
export interface ClientSocket {
  /** The client's address; undefined once the connection is gone, if it was never asked before. */
  readonly remoteAddress?: string | undefined;
  /** The connection is closed, or closing: nothing more will be written to it. */
  readonly destroyed: boolean;
}

export interface ProxyRequest extends Readable {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  /** Flat `[name, value, …]` as received (latin1). */
  readonly rawHeaders: string[];
  /** Lower-cased header object; built on first use by the built-in server (the access log reads it). */
  readonly headers: IncomingHttpHeaders;
  readonly httpVersionMajor: number;
  readonly socket: ClientSocket;
  /** A gRPC call (HTTP/2, content-type application/grpc…): local replies are gRPC statuses; absent: false. */
  readonly grpc?: boolean;
  /** The call's own deadline (grpc-timeout) in ms; absent: none. */
  readonly deadlineMs?: number | undefined;
}

export interface ProxyResponse extends EventEmitter {
  writeHead(statusCode: number, statusMessage: string, headers?: string[]): this;
  writeHead(statusCode: number, headers?: string[]): this;
  /** `callback` runs once the chunk has been handed to the kernel (or the write failed). */
  write(chunk: Buffer | string, callback?: (err?: Error | null) => void): boolean;
  end(chunk?: Buffer | string): this;
  destroy(err?: Error): this;
  readonly destroyed: boolean;
  readonly headersSent: boolean;
  readonly statusCode: number;
  /** The whole response has been handed to the socket. */
  readonly writableFinished: boolean;
  readonly req: ProxyRequest;
  /**
   * For the response to an upgrade request in its turn, with nothing written yet: the client
   * connection, handed over (the HTTP server lets go of it), and the bytes the client sent after its
   * request; the caller must close the socket. Absent or undefined: the connection cannot be taken.
   */
  takeConnection?(): { socket: Socket; head: Buffer } | undefined;
  /**
   * Trailer fields (flat `[name, value, …]`) to send after the body, before end(); absent: the
   * response cannot carry them (HTTP/1.1 responses here), and they are dropped.
   */
  passTrailers?(trailers: readonly string[]): void;
}

/** The 'request' listener both servers call. */
export type RequestListener = (req: ProxyRequest, res: ProxyResponse) => void;
