/** Time and randomness are passed in so balancers, backoff and tests are deterministic. */

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

/** Returns a number in [0, 1), like Math.random. */
export type Random = () => number;

export const systemClock: Clock = { now: () => Date.now() };
export const systemRandom: Random = Math.random;
