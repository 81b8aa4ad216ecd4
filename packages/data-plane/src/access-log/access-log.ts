/**
 * The opt-in access log: one JSON line per client request, written by pino through an
 * asynchronous destination so the request path only formats an object and queues a string. Off
 * by default: at tens of thousands of requests a second a log line costs more than the proxying
 * logic itself, and metrics already count everything.
 *
 * Its promises: a line reaches the file within FLUSH_EVERY_MS (lines are batched, never held
 * longer); whole lines only, each batch one append, so a process killed between batches leaves
 * no torn line and loses at most its last batch; what is queued is written synchronously when the
 * process exits (a drain, or a crash: an exit handler); reopen() (SIGHUP) starts a new file after
 * logrotate moved the old one; a path that cannot be written is an error at start (check()).
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { destination, pino, stdTimeFunctions, type DestinationStream, type Logger } from 'pino';
import type { ProxyRequest, ProxyResponse } from '../proxy/exchange.js';

/** The longest a line waits in memory before it is written. */
export const FLUSH_EVERY_MS = 1_000;

/** pino's destination (sonic-boom): what this module uses of it. */
type Destination = DestinationStream & { flush(cb?: (err?: Error) => void): void; flushSync(): void; reopen(file?: string): void };

/** What the forwarder knows about a request it sent upstream; absent for local answers (404, 429, …). */
export interface UpstreamSummary {
  readonly route: string;
  readonly pool: string;
  readonly backend: string;
  /** Attempts after the first (the X-Retry-Count the last attempt carried). */
  readonly retries: number;
}

export interface AccessEntry {
  /** Client address as the socket sees it. */
  client: string | undefined;
  method: string | undefined;
  url: string | undefined;
  host: string | undefined;
  status: number;
  /** Milliseconds from the request's arrival until its response ended or the client left. */
  durationMs: number;
  /** False when the client went away or the response was cut before it ended. */
  completed: boolean;
  requestId: string | undefined;
  /** The proxy's own reason for a local answer (`x-lb-error`), if any. */
  lbError: string | undefined;
  /** `HTTP/2` for a request that came over HTTP/2 (HTTP/1.x requests leave it out). */
  protocol?: string;
  route?: string;
  pool?: string;
  backend?: string;
  retries?: number;
}

/** One session of a tcp or tls-passthrough listener, written when it ends. */
export interface L4SessionEntry {
  listener: string;
  /** The client's address: the socket's, or what a trusted PROXY protocol header said. */
  client: string | undefined;
  /** tls-passthrough: the name the ClientHello asked for (absent: none, or not TLS). */
  sni?: string;
  route?: string;
  pool?: string;
  backend?: string;
  /** Connects made (retries included); 0 when the session never reached a backend. */
  connects: number;
  /** Milliseconds from accept to close. */
  durationMs: number;
  /** Bytes from the client, and to it. */
  bytesIn: number;
  bytesOut: number;
  /** How it ended: closed (by either side, cleanly), idle-timeout, drained, client-error, backend-error, or the refusal (metrics/l4-stats.ts). */
  end: string;
}

/** `--access-log` values: `off`, `stdout`, or a file path (appended to, created with its directory if missing; reopened on SIGHUP). */
export type AccessLogTarget = 'off' | 'stdout' | string;

export class AccessLog {
  private readonly logger: Logger;
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  private constructor(
    private readonly stream: Destination,
    private readonly file: string | undefined,
  ) {
    this.logger = pino({ base: null, messageKey: 'msg', timestamp: stdTimeFunctions.isoTime }, stream);
    this.timer = setInterval(() => this.flush(), FLUSH_EVERY_MS);
    this.timer.unref();
    process.on('exit', this.flushNow);
  }

  /** Throws, with the reason, when `target` cannot be appended to (checked once, at start). */
  static check(target: AccessLogTarget): void {
    if (target === 'off' || target === 'stdout') return;
    mkdirSync(dirname(target), { recursive: true });
    closeSync(openSync(target, 'a'));
  }

  /** undefined for `off`; the file is opened for append, created if missing. */
  static open(target: AccessLogTarget): AccessLog | undefined {
    if (target === 'off') return undefined;
    const file = target === 'stdout' ? undefined : target;
    const stream = destination({ dest: file ?? 1, sync: false, append: true, mkdir: true, minLength: 4096 }) as Destination;
    return new AccessLog(stream, file);
  }

  private flush(): void {
    if (this.closed) return;
    try {
      this.stream.flush();
    } catch {
      // Not open yet, or a write in progress: the next tick (or the exit) writes it.
    }
  }

  /** On exit, whatever is queued is written before the process goes. */
  private readonly flushNow = (): void => {
    try {
      this.stream.flushSync();
    } catch {
      // Nothing to flush, or the file went away: nothing more can be done at exit.
    }
  };

  /** Starts a new file at the same path (logrotate moved the old one away). */
  reopen(): void {
    if (this.file === undefined || this.closed) return;
    this.flushNow();
    this.stream.reopen();
  }

  /** Builds the entry for a finished (or abandoned) request; pure, so it is tested on its own. */
  static entry(
    req: ProxyRequest,
    res: ProxyResponse,
    startedAt: number,
    now: number,
    upstream: UpstreamSummary | undefined,
    requestId: string | undefined,
    lbError: string | undefined,
  ): AccessEntry {
    const entry: AccessEntry = {
      client: req.socket.remoteAddress,
      method: req.method,
      url: req.url,
      host: req.headers.host,
      status: res.statusCode,
      durationMs: Math.round((now - startedAt) * 1000) / 1000,
      completed: res.writableFinished,
      requestId: requestId ?? (req.headers['x-request-id'] as string | undefined),
      lbError,
    };
    if (req.httpVersionMajor === 2) entry.protocol = 'HTTP/2';
    if (upstream !== undefined) {
      entry.route = upstream.route;
      entry.pool = upstream.pool;
      entry.backend = upstream.backend;
      entry.retries = upstream.retries;
    }
    return entry;
  }

  write(entry: AccessEntry): void {
    this.logger.info(entry, 'access');
  }

  /** One line per TCP session, beside the request lines (msg `tcp`). */
  writeSession(entry: L4SessionEntry): void {
    this.logger.info(entry, 'tcp');
  }

  /** Writes out what is queued; no line is written after. */
  close(): Promise<void> {
    clearInterval(this.timer);
    return new Promise((resolve) =>
      this.logger.flush(() => {
        this.closed = true;
        process.off('exit', this.flushNow);
        resolve();
      }),
    );
  }
}
