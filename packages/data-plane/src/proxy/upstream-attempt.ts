/**
 * One attempt of a request to one backend — Envoy's UpstreamRequest. It is the upstream client's
 * handler (upstream/upstream.ts) for that one dispatch: it keeps what belongs to the attempt
 * (its backend, whether it reached a connection, its abort and resume functions, whether its
 * response is being dropped for a retry) and reports every event to its call (proxy-call.ts),
 * which decides what the client sees. A new attempt is a new object, so a late event of an
 * abandoned attempt can never touch the next one.
 */
import { UPSTREAM_ERRORS, UpstreamError } from '../errors.js';
import type { CompiledBackend, RouteTarget } from '../routing/routing-table.js';
import type { UpstreamHandler, UpstreamRequest } from '../upstream/upstream.js';
import { attemptConnected, attemptStarted, type AccountedAttempt } from './attempt-accounting.js';

/** What an attempt reports to the request it belongs to. */
export interface AttemptOwner {
  /** The client left: an attempt that reaches a connection now is aborted at once. */
  readonly gone: boolean;
  /** The final response head (1xx heads are passed over). false: stop reading. */
  attemptHeaders(attempt: UpstreamAttempt, status: number, rawHeaders: readonly string[], statusText: string): boolean;
  /** A body chunk of the response being passed on; false: pause until resume(). */
  attemptData(chunk: Buffer, release: (() => void) | undefined): boolean;
  attemptComplete(attempt: UpstreamAttempt, trailers: readonly string[] | undefined): void;
  attemptFailed(attempt: UpstreamAttempt, err: Error): void;
}

export function clientAborted(): UpstreamError {
  return new UpstreamError(UPSTREAM_ERRORS.CLIENT_ABORTED, 'client closed the connection');
}

export class UpstreamAttempt implements UpstreamHandler, AccountedAttempt {
  connected = false;
  startedAt = 0;
  /** The response status, once its head arrived. */
  status = 0;
  /** The response is read and dropped: a retry has been decided. */
  discarding = false;
  /** Ends the attempt (its onError follows); null until it has a connection. */
  abort: ((err?: Error) => void) | null = null;
  /** Restarts a response paused by back-pressure. */
  resume: (() => void) | null = null;

  constructor(
    private readonly owner: AttemptOwner,
    readonly target: RouteTarget,
    readonly backend: CompiledBackend,
    readonly trial: boolean,
  ) {}

  send(request: UpstreamRequest): void {
    attemptStarted(this);
    this.backend.upstream!.dispatch(request, this);
  }

  onConnect(abort: (err?: Error) => void): void {
    attemptConnected(this);
    if (this.owner.gone) abort(clientAborted());
    else this.abort = abort;
  }

  onHeaders(statusCode: number, rawHeaders: readonly string[], resume: () => void, statusText: string): boolean {
    // 1xx: the client-side server already answered `Expect: 100-continue` itself.
    if (statusCode < 200) return true;
    this.status = statusCode;
    this.resume = resume;
    return this.owner.attemptHeaders(this, statusCode, rawHeaders, statusText);
  }

  onData(chunk: Buffer, release?: () => void): boolean {
    if (this.discarding) {
      release?.();
      return true;
    }
    return this.owner.attemptData(chunk, release);
  }

  onComplete(trailers?: readonly string[]): void {
    this.owner.attemptComplete(this, trailers);
  }

  onError(err: Error): void {
    this.owner.attemptFailed(this, err);
  }
}
