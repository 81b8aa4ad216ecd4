/**
 * One coarse timer for every upstream deadline: request timeouts and idle keep-alive expiry are
 * numbers compared on a tick instead of a timer per request, so the request path only writes a
 * field. A deadline set for `ms` fires after at least `ms` and at most two ticks more (undici's
 * own timers are coarser). The tick runs only while some pool has connections and never keeps
 * the process alive.
 */

export interface Sweepable {
  /** Expire what is due at `now` (performance.now() ms). */
  sweep(now: number): void;
}

/** Tick of the sweeper (ms): how late a deadline may fire. */
export const SWEEP_INTERVAL_MS = 100;
let intervalMs = SWEEP_INTERVAL_MS;

const members = new Set<Sweepable>();
let timer: NodeJS.Timeout | undefined;
/** performance.now() at the last tick (or registration): the clock deadlines are set against. */
let coarseNow = performance.now();

function tick(): void {
  coarseNow = performance.now();
  for (const m of members) m.sweep(coarseNow);
}

/** The deadline (performance.now() ms) `ms` from now: never early, at most two ticks late. */
export function deadlineIn(ms: number): number {
  return coarseNow + ms + intervalMs;
}

/** performance.now() as of the last tick: good enough for idle bookkeeping. */
export function coarseClock(): number {
  return coarseNow;
}

export function watch(member: Sweepable): void {
  members.add(member);
  if (timer === undefined) {
    coarseNow = performance.now();
    start();
  }
}

function start(): void {
  timer = setInterval(tick, intervalMs);
  timer.unref();
}

/**
 * A finer (or the default) tick, for tests and fuzz targets whose timeouts are a few ms: at the
 * default tick each of their timed-out requests would cost 100–200 ms of wall time.
 */
export function setSweepInterval(ms: number = SWEEP_INTERVAL_MS): void {
  intervalMs = ms;
  if (timer !== undefined) {
    clearInterval(timer);
    start();
  }
}

export function unwatch(member: Sweepable): void {
  members.delete(member);
  if (members.size === 0 && timer !== undefined) {
    clearInterval(timer);
    timer = undefined;
  }
}
