/**
 * The opt-in access log: one JSON line per client request, written by pino through an
 * asynchronous destination so the request path only formats an object and queues a string. Off
 * by default: at tens of thousands of requests a second a log line costs more than the proxying
 * logic itself, and metrics already count everything.
 */
import type { ProxyRequest, ProxyResponse } from '../proxy/exchange.js';
import { destination, pino, stdTimeFunctions, type Logger } from 'pino';

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
  route?: string;
  pool?: string;
  backend?: string;
  retries?: number;
}

/** `--access-log` values: `off`, `stdout`, or a file path (appended to; reopen on SIGHUP is not done). */
export type AccessLogTarget = 'off' | 'stdout' | string;

export class AccessLog {
  private readonly logger: Logger;

  private constructor(logger: Logger) {
    this.logger = logger;
  }

  /** undefined for `off`; the file is opened for append, created if missing. */
  static open(target: AccessLogTarget): AccessLog | undefined {
    if (target === 'off') return undefined;
    const stream = destination({ dest: target === 'stdout' ? 1 : target, sync: false, append: true, mkdir: true, minLength: 4096 });
    return new AccessLog(pino({ base: null, messageKey: 'msg', timestamp: stdTimeFunctions.isoTime }, stream));
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

  /** Writes out what is queued. */
  close(): Promise<void> {
    return new Promise((resolve) => this.logger.flush(() => resolve()));
  }
}
