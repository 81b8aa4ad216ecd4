/**
 * A balancer answers one question: which item takes the next request. It may answer "none"
 * (undefined) when it has nothing to offer. Picking is synchronous and must not allocate: it runs
 * on every request. A balancer is built for one immutable set of items and never sees changes;
 * a new snapshot builds a new balancer.
 */

/** What a pick may look at. Empty for now; hash-based algorithms will add a key here. */
export interface PickContext {
  readonly hashKey?: string;
}

export const EMPTY_PICK_CONTEXT: PickContext = Object.freeze({});

export interface Balancer<T> {
  /** Returns the next item, or undefined when there is none to choose from. */
  pick(ctx: PickContext): T | undefined;
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
