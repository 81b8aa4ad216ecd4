import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { readInputs, saveFinding, saveInput, type StoredInput } from './corpus.js';
import { CoverageTracker, FeatureSet, startCoverage } from './coverage.js';
import { Mutator } from './mutator.js';
import { Rng } from './rng.js';
import { InputRunner } from './runner.js';
import type { Finding, FuzzTarget } from './types.js';

/**
 * The in-process engine: a libFuzzer-style coverage-guided loop (fuzz), replaying stored inputs
 * (regress) and shrinking a failing input (minimize). The CLI runs these in a child process under a
 * watchdog; tests call them directly.
 */

export const DEFAULT_MAX_LEN = 4096;
/** Mutations stacked on one parent to make one candidate: 1..MAX_DEPTH. */
const MAX_DEPTH = 5;

export interface FuzzOptions {
  target: FuzzTarget;
  /** Seeds are read from here and new corpus entries saved here (by content hash). */
  corpusDir?: string;
  /** Findings are saved here (input + .log report); not saved when absent. */
  artifactsDir?: string;
  /** Extra seeds, after those of corpusDir. With none at all, the corpus starts from one empty input. */
  seeds?: readonly Buffer[];
  /** Stop after this many mutated inputs (seeds and replays not counted). */
  runs?: number;
  /** Stop after this much wall time. With neither runs nor seconds (nor signal), runs forever. */
  seconds?: number;
  signal?: AbortSignal;
  /** Longest input the mutator makes (default 4096); longer seeds are run but not mutated past it. */
  maxLen?: number;
  /** PRNG seed: same seed, target and corpus, same inputs. */
  seed?: number;
  timeoutMs?: number;
  /**
   * Up to this many inputs run between two coverage takes (default 1: every input measured alone).
   * A take costs a fixed 0.15-0.3 ms, so batching speeds up fast targets: the batch's summed counts are
   * checked against features seen in batches, and only a batch that shows something new is replayed one
   * input at a time to find the inputs worth keeping. The batch size adapts: it halves when a batch
   * yields corpus entries and doubles (up to this cap) when it does not. The price: an input whose only
   * news is a hit-count bucket hidden in the batch's sum is missed.
   */
  batch?: number;
  /** false: no coverage at all, candidates are mutations of the seeds only (a baseline for tests). */
  guided?: boolean;
  stopOnFinding?: boolean;
  /** Re-read corpusDir this often for entries other jobs saved (0/absent: never). */
  reloadEveryMs?: number;
  statsEveryMs?: number;
  onStats?: (stats: FuzzStats) => void;
  /** Each distinct finding (first of its signature), with where it was saved. */
  onFinding?: (finding: Finding, savedAs: string | undefined) => void;
  /** Called with each input just before it runs (the CLI's child records it for its watchdog). */
  beforeInput?: (data: Buffer) => void;
  /** Called after each input has finished (found or not). */
  afterInput?: () => void;
  log?: (line: string) => void;
}

export interface FuzzStats {
  /** Mutated inputs tried. */
  runs: number;
  /** Every execution: seeds, mutated inputs and batch replays. */
  execs: number;
  elapsedMs: number;
  execsPerSecond: number;
  corpus: number;
  /** (block boundary, hit-count bucket) pairs seen. */
  features: number;
  /** Block boundaries known in the filtered scripts. */
  boundaries: number;
  /** Distinct findings (by signature). */
  findings: number;
  /** Current batch size. */
  batch: number;
}

export interface FuzzResult extends FuzzStats {
  findingList: Finding[];
  corpusInputs: Buffer[];
  stoppedBy: 'runs' | 'seconds' | 'signal' | 'finding';
  /** Script URLs that matched the coverage filter: empty means the filter is wrong. */
  matchedUrls: string[];
}

/** Imports a target module after starting coverage (code compiled earlier would have no block counters). */
export async function loadTarget(path: string): Promise<FuzzTarget> {
  startCoverage();
  const url = pathToFileURL(isAbsolute(path) ? path : resolve(path)).href;
  const mod = (await import(url)) as { target?: unknown; default?: unknown };
  const target = (mod.target ?? mod.default) as FuzzTarget | undefined;
  if (!target || typeof target !== 'object' || typeof target.run !== 'function' || typeof target.name !== 'string' || target.coverageFilter === undefined) {
    throw new Error(`${path} must export \`target\` (or a default export): { name, coverageFilter, run(data) }`);
  }
  return target;
}

interface Entry {
  data: Buffer;
}

export async function fuzz(options: FuzzOptions): Promise<FuzzResult> {
  const { target } = options;
  const maxLen = options.maxLen ?? DEFAULT_MAX_LEN;
  const guided = options.guided ?? true;
  const maxBatch = Math.max(1, options.batch ?? 1);
  const log = options.log ?? (() => {});
  const rng = new Rng(options.seed ?? 1);
  const corpus: Entry[] = [];
  const pickEntry = (): Entry => {
    // max of two uniform picks: later (newer, deeper) entries are picked more often, linearly.
    const n = corpus.length;
    return corpus[Math.max(rng.below(n), rng.below(n))]!;
  };
  const mutator = new Mutator(rng, target.dictionary ?? [], () => (corpus.length > 1 ? corpus[rng.below(corpus.length)]!.data : undefined));
  const coverage = guided ? new CoverageTracker(target.coverageFilter) : undefined;
  const seen = new FeatureSet();
  const seenInBatches = new FeatureSet();
  const runner = new InputRunner(target, options.timeoutMs);
  const known = new Set<string>();
  const findings = new Map<string, Finding>();
  const started = performance.now();
  const deadline = options.seconds !== undefined ? started + options.seconds * 1000 : Number.POSITIVE_INFINITY;
  let runs = 0;
  let execs = 0;
  let batch = 1;
  let stoppedBy: FuzzResult['stoppedBy'] | undefined;
  let nextStats = started + (options.statsEveryMs ?? Number.POSITIVE_INFINITY);
  let nextReload = started + (options.reloadEveryMs || Number.POSITIVE_INFINITY);

  const stats = (): FuzzStats => {
    const elapsedMs = performance.now() - started;
    return {
      runs,
      execs,
      elapsedMs,
      execsPerSecond: elapsedMs > 0 ? (execs * 1000) / elapsedMs : 0,
      corpus: corpus.length,
      features: seen.size,
      boundaries: coverage?.boundaries ?? 0,
      findings: findings.size,
      batch,
    };
  };

  /** Runs one input; returns whether it failed (failing inputs go to the artifacts, never to the corpus). */
  const execute = async (data: Buffer): Promise<boolean> => {
    options.beforeInput?.(data);
    const finding = await runner.run(data);
    options.afterInput?.();
    execs++;
    if (!finding) return false;
    if (findings.has(finding.signature)) return true;
    findings.set(finding.signature, finding);
    const savedAs = options.artifactsDir ? saveFinding(options.artifactsDir, finding, { target: target.name }) : undefined;
    options.onFinding?.(finding, savedAs);
    if (options.stopOnFinding) stoppedBy = 'finding';
    return true;
  };

  /** Runs one input alone; keeps it when it shows a feature never seen. Returns whether it was kept. */
  const tryAlone = async (data: Buffer, save: boolean): Promise<boolean> => {
    const failed = await execute(data);
    if (!coverage) return false;
    coverage.take();
    seenInBatches.addAll(coverage.features, coverage.length);
    if (seen.addAll(coverage.features, coverage.length) === 0 || failed) return false;
    corpus.push({ data });
    if (save && options.corpusDir) known.add(saveInput(options.corpusDir, data));
    return true;
  };

  const reload = async (): Promise<void> => {
    if (!options.corpusDir) return;
    for (const stored of readInputs(options.corpusDir)) {
      if (known.has(stored.name)) continue;
      known.add(stored.name);
      coverage?.discard();
      await tryAlone(stored.data, false);
    }
  };

  runner.install();
  try {
    if (target.setup) await target.setup();
    coverage?.discard();

    // Seeds: the corpus directory, then the given ones. Each is kept only when it adds coverage.
    const stored: StoredInput[] = options.corpusDir ? readInputs(options.corpusDir) : [];
    for (const s of stored) known.add(s.name);
    const seeds = [...stored.map((s) => s.data), ...(options.seeds ?? [])];
    if (seeds.length === 0) seeds.push(Buffer.alloc(0));
    for (const data of seeds) {
      if (coverage) await tryAlone(data, false);
      else if (!(await execute(data))) corpus.push({ data });
    }
    // Every seed failed or added nothing: mutate the first one all the same.
    if (corpus.length === 0) corpus.push({ data: seeds[0]! });
    if (coverage && coverage.matchedUrls.size === 0) {
      log(`warning: no script matched the coverage filter of ${target.name} (${String(target.coverageFilter)}): the fuzzer is blind`);
    }

    while (stoppedBy === undefined) {
      if (options.runs !== undefined && runs >= options.runs) stoppedBy = 'runs';
      else if (performance.now() >= deadline) stoppedBy = 'seconds';
      else if (options.signal?.aborted) stoppedBy = 'signal';
      if (stoppedBy !== undefined) break;

      const now = performance.now();
      if (now >= nextReload) {
        await reload();
        nextReload = now + options.reloadEveryMs!;
      }
      if (now >= nextStats) {
        options.onStats?.(stats());
        nextStats = now + options.statsEveryMs!;
      }

      const k = Math.min(batch, options.runs !== undefined ? options.runs - runs : batch);
      const candidates: Buffer[] = [];
      for (let i = 0; i < k; i++) {
        let data = pickEntry().data;
        const depth = 1 + rng.below(MAX_DEPTH);
        for (let d = 0; d < depth; d++) data = mutator.mutateOnce(data, maxLen);
        candidates.push(data);
      }

      if (!coverage) {
        for (const c of candidates) {
          runs++;
          await execute(c);
          if (stoppedBy !== undefined) break;
        }
        continue;
      }

      if (k === 1) {
        runs++;
        const kept = await tryAlone(candidates[0]!, true);
        batch = kept ? 1 : Math.min(maxBatch, 2);
        continue;
      }

      for (const c of candidates) {
        runs++;
        await execute(c);
        if (stoppedBy !== undefined) break;
      }
      coverage.take();
      if (seenInBatches.addAll(coverage.features, coverage.length) === 0) {
        batch = Math.min(maxBatch, batch * 2);
        continue;
      }
      // Something in this batch is new: measure its inputs one by one.
      let kept = 0;
      for (const c of candidates) {
        if (stoppedBy !== undefined) break;
        if (await tryAlone(c, true)) kept++;
      }
      batch = kept > 0 ? Math.max(1, batch >> 1) : Math.min(maxBatch, batch * 2);
    }
  } finally {
    runner.uninstall();
    if (target.teardown) await target.teardown();
  }
  return {
    ...stats(),
    findingList: [...findings.values()],
    corpusInputs: corpus.map((e) => e.data),
    stoppedBy: stoppedBy ?? 'runs',
    matchedUrls: coverage ? [...coverage.matchedUrls] : [],
  };
}

export interface RegressFailure {
  name: string;
  finding: Finding;
}

/** Runs each input once; returns the ones that fail. Used by the unit suite so that saved crashes stay fixed. */
export async function regress(
  target: FuzzTarget,
  inputs: readonly StoredInput[],
  options: { timeoutMs?: number; beforeInput?: (data: Buffer) => void; afterInput?: () => void } = {},
): Promise<RegressFailure[]> {
  const runner = new InputRunner(target, options.timeoutMs);
  const failures: RegressFailure[] = [];
  runner.install();
  try {
    if (target.setup) await target.setup();
    for (const input of inputs) {
      options.beforeInput?.(input.data);
      const finding = await runner.run(input.data);
      options.afterInput?.();
      if (finding) failures.push({ name: input.name, finding });
    }
  } finally {
    runner.uninstall();
    if (target.teardown) await target.teardown();
  }
  return failures;
}

export interface MinimizeResult {
  input: Buffer;
  finding: Finding;
  tries: number;
}

/**
 * Shrinks a failing input while it keeps failing the same way (same signature): drops whole lines, then
 * ever smaller byte ranges, until a pass removes nothing or the budget (tries, default 10,000) is spent.
 */
export async function minimize(
  target: FuzzTarget,
  input: Buffer,
  options: { tries?: number; seconds?: number; timeoutMs?: number; beforeInput?: (data: Buffer) => void; afterInput?: () => void } = {},
): Promise<MinimizeResult> {
  const runner = new InputRunner(target, options.timeoutMs);
  const budget = options.tries ?? 10_000;
  const deadline = options.seconds !== undefined ? performance.now() + options.seconds * 1000 : Number.POSITIVE_INFINITY;
  let tries = 0;
  runner.install();
  try {
    if (target.setup) await target.setup();
    options.beforeInput?.(input);
    const first = await runner.run(input);
    options.afterInput?.();
    if (!first) throw new Error('minimize: the input does not fail');
    if (first.kind === 'timeout') throw new Error('minimize: timeouts are not minimized (each try would take the whole timeout)');
    let best = input;
    let finding = first;
    const fails = async (candidate: Buffer): Promise<boolean> => {
      tries++;
      options.beforeInput?.(candidate);
      const f = await runner.run(candidate);
      options.afterInput?.();
      if (f && f.signature === first.signature) {
        best = candidate;
        finding = f;
        return true;
      }
      return false;
    };
    const spent = (): boolean => tries >= budget || performance.now() >= deadline;
    let progress = true;
    while (progress && !spent()) {
      progress = false;
      // Lines first: HTTP inputs shrink fastest a header at a time.
      for (let i = 0; !spent(); ) {
        const ends: number[] = [];
        for (let j = 0; j < best.length; j++) if (best[j] === 0x0a) ends.push(j + 1);
        if (ends.at(-1) !== best.length) ends.push(best.length);
        if (i >= ends.length) break;
        const start = i === 0 ? 0 : ends[i - 1]!;
        if (await fails(Buffer.concat([best.subarray(0, start), best.subarray(ends[i]!)]))) progress = true;
        else i++;
      }
      for (let chunk = Math.max(1, best.length >> 1); chunk >= 1 && !spent(); chunk >>= 1) {
        for (let at = 0; at < best.length && !spent(); ) {
          if (await fails(Buffer.concat([best.subarray(0, at), best.subarray(at + chunk)]))) progress = true;
          else at += chunk;
        }
      }
    }
    return { input: best, finding, tries };
  } finally {
    runner.uninstall();
    if (target.teardown) await target.teardown();
  }
}
