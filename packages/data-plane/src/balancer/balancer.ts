/**
 * A balancer answers one question: which item takes the next request. It may answer "none"
 * (undefined) when it has nothing to offer. Picking is synchronous and must not allocate: it runs
 * on every request. A balancer is built for one immutable set of items and never sees changes to
 * the set; a new snapshot (or a health change) builds a new balancer. Dynamic algorithms read the
 * load of their items through BackendRuntime (host.ts), which outlives balancers.
 */

/**
 * What a pick may look at: the request, read lazily so algorithms that ignore it pay nothing.
 * One context object is reused for every request (the forwarder resets it), so a balancer must not
 * keep it or anything it returns past the pick.
 */
export interface PickContext {
  /** The client's address as the socket sees it (not X-Forwarded-For, which clients can forge). */
  clientIp(): string | undefined;
  /** The first value of a request header; `lowerName` must be lower case. */
  header(lowerName: string): string | undefined;
  /** A cookie's value from the Cookie header(s), quotes removed. */
  cookie(name: string): string | undefined;
  /** The request path, without the query. */
  path(): string;
  /** The first value of a query parameter, percent-decoded. */
  query(name: string): string | undefined;
  /** Sticky sessions: the response must carry this Set-Cookie value (pinned to the picked backend). */
  pin(setCookie: string): void;
}

/** A context that knows nothing of the request; L4 connections extend it with their address. */
export class EmptyPickContext implements PickContext {
  clientIp(): string | undefined {
    return undefined;
  }
  header(): undefined {
    return undefined;
  }
  cookie(): undefined {
    return undefined;
  }
  path(): string {
    return '/';
  }
  query(): undefined {
    return undefined;
  }
  pin(): void {}
}

/** A context with no request behind it: hash-based algorithms fall back to a random pick. */
export const EMPTY_PICK_CONTEXT: PickContext = Object.freeze(new EmptyPickContext());

export interface Balancer<T> {
  /** Returns the next item, or undefined when there is none to choose from. */
  pick(ctx: PickContext): T | undefined;
  /**
   * A pick for a retry, for algorithms that take turns: it must not use up a fresh request's
   * turn. Otherwise every request that fails on a dead backend and is retried moves the rotation
   * on twice, and in a pool of two the next request lands on the dead backend again — all of
   * them would. Absent: retries use pick().
   */
  pickForRetry?(ctx: PickContext): T | undefined;
  /** How many items this balancer chooses among. */
  readonly size: number;
}

/** Answers "none" forever: a pool without active backends. */
export class EmptyBalancer<T> implements Balancer<T> {
  readonly size = 0;
  pick(): T | undefined {
    return undefined;
  }
}
