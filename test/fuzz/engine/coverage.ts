import { Session } from 'node:inspector';
import type { CoverageFilter } from './types.js';

/**
 * Coverage feedback from V8's own precise block coverage (what c8 reads), through the in-thread inspector.
 *
 * What V8 gives: Profiler.takePreciseCoverage returns, per function that ran since the last take, a list
 * of source ranges with execution counts, and resets the counts. The innermost range around an offset
 * gives that offset's count. V8 merges a block into its parent when both have the same count, so a
 * block only shows up as a range of its own when its count differs (typically when it did NOT run).
 * Ranges are therefore not stable block identities, and a block that starts running disappears from
 * the list rather than appearing in it.
 *
 * What the fuzzer needs: stable features. So we learn block boundaries: every range start and end V8
 * ever reported for a function becomes a known boundary (the start of a block or of the code after one).
 * For each input, the count at every known boundary of every function that ran is read off the ranges
 * (innermost range wins), bucketed like AFL (1, 2, 3, 4-7, 8-15, 16-31, 32-127, 128+), and each
 * (boundary, bucket) pair is a feature. Seeing the "if" body uncovered once teaches its start offset;
 * the first input that runs it then shows a count at that offset: new coverage. V8 has no edge coverage,
 * so hit-count buckets per block stand in for AFL's edge buckets.
 *
 * Cost: V8 walks every function of every loaded script on each take (about 0.15-0.3 ms in a small
 * process, more with big dependency graphs), whatever the filter. Only the filtered scripts are then
 * looked at in JS: scriptId -> match is cached, non-matching scripts are skipped before their functions.
 */

/** Precise coverage is isolate-wide and must never be switched off and on again: functions compiled while it
 * is off get no block counters. So one session per thread, started once, shared by every tracker. */
let session: Session | undefined;

function post<T>(method: string, params?: object): T {
  if (!session) throw new Error('coverage session not started');
  let result: T | undefined;
  let failure: Error | null = null;
  // The in-thread session answers synchronously: the callback has run when post() returns.
  session.post(method, params ?? {}, (err, res) => {
    failure = err;
    result = res as T;
  });
  if (failure) throw failure;
  if (result === undefined) throw new Error(`inspector did not answer ${method} synchronously`);
  return result;
}

/**
 * Starts V8 block coverage for this thread (idempotent). Code compiled before this has no block
 * counters, so call it before importing the code under test; loadTarget() does.
 */
export function startCoverage(): void {
  if (session) return;
  session = new Session();
  session.connect();
  post('Profiler.enable');
  post('Profiler.startPreciseCoverage', { callCount: true, detailed: true, allowTriggeredUpdates: false });
}

interface Range {
  startOffset: number;
  endOffset: number;
  count: number;
}
interface FunctionCoverage {
  ranges: Range[];
}
interface ScriptCoverage {
  scriptId: string;
  url: string;
  functions: FunctionCoverage[];
}

/** What the tracker knows about one function: its known boundaries (sorted) and their feature ids. */
interface FunctionInfo {
  offsets: number[];
  ids: number[];
}

export const BUCKETS = 8;

/** AFL's hit-count classes: 1, 2, 3, 4-7, 8-15, 16-31, 32-127, 128+ -> 0..7. */
export function bucket(count: number): number {
  if (count <= 3) return count - 1;
  if (count < 8) return 3;
  if (count < 16) return 4;
  if (count < 32) return 5;
  if (count < 128) return 6;
  return 7;
}

export function matcher(filter: CoverageFilter): (url: string) => boolean {
  if (typeof filter === 'string') return (url) => url.includes(filter);
  if (filter instanceof RegExp) return (url) => filter.test(url);
  return filter;
}

export class CoverageTracker {
  readonly #match: (url: string) => boolean;
  /** scriptId -> whether it counts; ids are never reused within a process. */
  readonly #scripts = new Map<string, boolean>();
  /** `${scriptId}:${functionStart}` -> the function's known boundaries. */
  readonly #functions = new Map<string, FunctionInfo>();
  #boundaries = 0;
  /** Features of the last take (boundary id * BUCKETS + bucket), in features[0..length). */
  features = new Int32Array(1024);
  length = 0;
  /** Script URLs that matched the filter, for telling a user whose filter matches nothing. */
  readonly matchedUrls = new Set<string>();

  constructor(filter: CoverageFilter) {
    this.#match = matcher(filter);
    startCoverage();
  }

  /** Known boundaries so far (each can give up to 8 features). */
  get boundaries(): number {
    return this.#boundaries;
  }

  /** Throws away the counts gathered since the last take (e.g. those of setup()). */
  discard(): void {
    post('Profiler.takePreciseCoverage');
  }

  /** Reads and resets the counts; the features of everything that ran since the last take land in features[0..length). */
  take(): void {
    const { result } = post<{ result: ScriptCoverage[] }>('Profiler.takePreciseCoverage');
    this.length = 0;
    for (const script of result) {
      let counts = this.#scripts.get(script.scriptId);
      if (counts === undefined) {
        counts = this.#match(script.url);
        this.#scripts.set(script.scriptId, counts);
        if (counts) this.matchedUrls.add(script.url);
      }
      if (!counts) continue;
      for (const fn of script.functions) this.#function(script.scriptId, fn.ranges);
    }
  }

  #function(scriptId: string, ranges: Range[]): void {
    const whole = ranges[0];
    if (!whole || whole.count === 0) return;
    const key = `${scriptId}:${whole.startOffset}`;
    let info = this.#functions.get(key);
    if (!info) {
      info = { offsets: [whole.startOffset], ids: [this.#boundaries++] };
      this.#functions.set(key, info);
    }
    // Learn boundaries this report shows for the first time.
    for (let i = 1; i < ranges.length; i++) {
      const r = ranges[i]!;
      this.#learn(info, r.startOffset, whole.endOffset);
      this.#learn(info, r.endOffset, whole.endOffset);
    }
    // Sweep the known boundaries (ascending) against the ranges (ascending start, outer before inner),
    // keeping a stack of the nested ranges that may contain the current boundary.
    const stack: Range[] = [whole];
    let next = 1;
    const { offsets, ids } = info;
    for (let b = 0; b < offsets.length; b++) {
      const at = offsets[b]!;
      while (next < ranges.length && ranges[next]!.startOffset <= at) {
        const r = ranges[next++]!;
        while (stack.length > 1 && stack[stack.length - 1]!.endOffset <= r.startOffset) stack.pop();
        stack.push(r);
      }
      while (stack.length > 1 && stack[stack.length - 1]!.endOffset <= at) stack.pop();
      const count = stack[stack.length - 1]!.count;
      if (count > 0) this.#push(ids[b]! * BUCKETS + bucket(count));
    }
  }

  #learn(info: FunctionInfo, offset: number, functionEnd: number): void {
    if (offset >= functionEnd) return;
    const { offsets, ids } = info;
    // Binary search: functions have tens of boundaries, and most takes learn nothing.
    let lo = 0;
    let hi = offsets.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (offsets[mid]! < offset) lo = mid + 1;
      else hi = mid;
    }
    if (offsets[lo] === offset) return;
    offsets.splice(lo, 0, offset);
    ids.splice(lo, 0, this.#boundaries++);
  }

  #push(feature: number): void {
    if (this.length === this.features.length) {
      const bigger = new Int32Array(this.features.length * 2);
      bigger.set(this.features);
      this.features = bigger;
    }
    this.features[this.length++] = feature;
  }
}

/** A growable bit set of features. */
export class FeatureSet {
  #bits = new Uint8Array(1 << 12);
  size = 0;

  has(feature: number): boolean {
    const byte = feature >>> 3;
    return byte < this.#bits.length && (this.#bits[byte]! & (1 << (feature & 7))) !== 0;
  }

  /** Adds; true when it was not there. */
  add(feature: number): boolean {
    const byte = feature >>> 3;
    if (byte >= this.#bits.length) {
      let n = this.#bits.length;
      while (n <= byte) n *= 2;
      const bigger = new Uint8Array(n);
      bigger.set(this.#bits);
      this.#bits = bigger;
    }
    const mask = 1 << (feature & 7);
    if ((this.#bits[byte]! & mask) !== 0) return false;
    this.#bits[byte] = this.#bits[byte]! | mask;
    this.size++;
    return true;
  }

  /** How many of features[0..length) are not in the set (one take never lists a feature twice). */
  countNew(features: Int32Array, length: number): number {
    let n = 0;
    for (let i = 0; i < length; i++) if (!this.has(features[i]!)) n++;
    return n;
  }

  /** Adds features[0..length); returns how many were new. */
  addAll(features: Int32Array, length: number): number {
    let n = 0;
    for (let i = 0; i < length; i++) if (this.add(features[i]!)) n++;
    return n;
  }
}
