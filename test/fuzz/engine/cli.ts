/**
 * The fuzzer's command line: `pnpm fuzz --target test/fuzz/targets/NAME.ts [options] [FILE|DIR ...]`.
 *
 * Run with tsx (a devDependency): targets import the packages' TypeScript sources the way the unit tests
 * do, and tsx runs them as they are, with no build step and no second output tree to keep in sync (tsc
 * into a gitignored dir would have to mirror packages/*\/src and their node_modules resolution; vitest's
 * runner is made for test files, not for hour-long runs with their own exit codes and signals).
 *
 * Two processes' worth of roles in one file. The supervisor (what you start) forks one child per job and
 * watches it: each child writes the input it is about to run, with a counter and a running flag, to a
 * small file; an input that runs longer than the timeout without the event loop coming back (a
 * synchronous endless loop, which no in-process timer can interrupt) is a hang, and a child that dies
 * mid-input (abort, out of memory, a fatal error) leaves its input behind too: the supervisor saves
 * either as an artifact. Children are processes, not worker threads, because V8's coverage take is
 * about three times as costly in a worker.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readInputs, readPaths, saveFinding } from './corpus.js';
import { DEFAULT_MAX_LEN, type FuzzStats, fuzz, loadTarget, minimize, regress } from './fuzzer.js';
import { DEFAULT_TIMEOUT_MS } from './runner.js';
import type { Finding } from './types.js';

const USAGE = `usage: pnpm fuzz --target PATH [options] [FILE|DIR ...]

  --target PATH       target module (exports \`target\`); its file name names the default dirs
  --corpus DIR        seeds and new corpus entries (default test/fuzz/corpus/<name>)
  --artifacts DIR     findings (default test/fuzz/artifacts/<name>)
  --seconds N         stop after N seconds            } neither: run until Ctrl-C
  --runs N            stop after N mutated inputs     }
  --max-len N         longest generated input (default ${DEFAULT_MAX_LEN})
  --seed N            PRNG seed (default 1); job i uses N+i
  --timeout MS        per-input timeout (default: the target's, else ${DEFAULT_TIMEOUT_MS})
  --batch N           inputs per coverage take, adaptive up to N (default 16; 1 = exact)
  --jobs N            parallel fuzzing processes sharing the corpus dir (default 1)
  --stop-on-finding   stop at the first finding (default: save each distinct bug and go on)
  --stats-every S     print stats every S seconds (default 10)
  --regress           run every corpus and artifact input once; fail on any finding
  --minimize FILE     shrink a crashing input; saves the result as a new crash artifact
  FILE|DIR ...        run just these inputs once (replay a crash); fails on any finding

exit status: 0 no finding, 1 findings, 2 usage or setup error`;

const HEADER = 12;
const RUNNING = 1;
const IDLE = 0;

interface Options {
  target: string;
  corpus: string;
  artifacts: string;
  seconds: number | undefined;
  runs: number | undefined;
  maxLen: number;
  seed: number;
  timeout: number | undefined;
  batch: number;
  jobs: number;
  stopOnFinding: boolean;
  statsEvery: number;
  regress: boolean;
  minimize: string | undefined;
  files: string[];
}

type ChildMessage =
  | { type: 'ready'; timeoutMs: number }
  | { type: 'stats'; stats: FuzzStats }
  | { type: 'finding'; kind: string; signature: string; savedAs: string | undefined }
  | { type: 'done'; findings: number; stats?: FuzzStats; stoppedBy?: string; matchedUrls?: number };

function parse(argv: string[]): Options {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      target: { type: 'string' },
      corpus: { type: 'string' },
      artifacts: { type: 'string' },
      seconds: { type: 'string' },
      runs: { type: 'string' },
      'max-len': { type: 'string' },
      seed: { type: 'string' },
      timeout: { type: 'string' },
      batch: { type: 'string' },
      jobs: { type: 'string' },
      'stop-on-finding': { type: 'boolean' },
      'stats-every': { type: 'string' },
      regress: { type: 'boolean' },
      minimize: { type: 'string' },
      help: { type: 'boolean' },
      // Internal: set by the supervisor for its children.
      'child-index': { type: 'string' },
      'current-file': { type: 'string' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  if (!values.target) throw new UsageError('--target is required');
  const num = (name: string, v: string | undefined, min: number): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new UsageError(`--${name} must be a number >= ${min}, not ${v}`);
    return n;
  };
  const name = basename(values.target, extname(values.target));
  return {
    target: values.target,
    corpus: values.corpus ?? join('test/fuzz/corpus', name),
    artifacts: values.artifacts ?? join('test/fuzz/artifacts', name),
    seconds: num('seconds', values.seconds, 0),
    runs: num('runs', values.runs, 0),
    maxLen: num('max-len', values['max-len'], 1) ?? DEFAULT_MAX_LEN,
    seed: num('seed', values.seed, 0) ?? 1,
    timeout: num('timeout', values.timeout, 1),
    batch: num('batch', values.batch, 1) ?? 16,
    jobs: num('jobs', values.jobs, 1) ?? 1,
    stopOnFinding: values['stop-on-finding'] ?? false,
    statsEvery: num('stats-every', values['stats-every'], 0.1) ?? 10,
    regress: values.regress ?? false,
    minimize: values.minimize,
    files: positionals,
  };
}

class UsageError extends Error {}

// ---------------------------------------------------------------------------------------------------
// Child: runs the engine in-process, reports to the supervisor.

/** Records the running input where the supervisor can read it even if this process stops answering. */
class CurrentInput {
  readonly #fd: number;
  readonly #buf: Buffer;
  #counter = 0;

  constructor(path: string, maxLen: number) {
    this.#fd = openSync(path, 'r+');
    this.#buf = Buffer.alloc(HEADER + maxLen);
  }

  begin(data: Buffer): void {
    // Inputs longer than the buffer (big seeds) are recorded cut: the supervisor says so in its report.
    const n = Math.min(data.length, this.#buf.length - HEADER);
    this.#buf.writeUInt32LE(++this.#counter >>> 0, 0);
    this.#buf.writeUInt32LE(RUNNING, 4);
    this.#buf.writeUInt32LE(n, 8);
    data.copy(this.#buf, HEADER, 0, n);
    writeSync(this.#fd, this.#buf, 0, HEADER + n, 0);
  }

  end(): void {
    this.#buf.writeUInt32LE(IDLE, 4);
    writeSync(this.#fd, this.#buf, 4, 4, 4);
  }
}

function ignoreSendError(): void {}

async function child(opts: Options, index: number, currentFile: string): Promise<number> {
  const send = (m: ChildMessage): void => {
    // The supervisor may be gone already (a `pkill -f` signals it and its children at once): what
    // the child has to say then goes to its own stderr only, not into an unhandled IPC error.
    if (process.connected) process.send?.(m, undefined, undefined, ignoreSendError);
  };
  const target = await loadTarget(opts.target);
  const timeoutMs = opts.timeout ?? target.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const longest = Math.max(opts.maxLen, ...[...readInputs(opts.corpus), ...readInputs(opts.artifacts)].map((s) => s.data.length));
  const current = new CurrentInput(currentFile, longest);
  const beforeInput = (data: Buffer): void => current.begin(data);
  const afterInput = (): void => current.end();
  const prefix = opts.jobs > 1 ? `[job ${index}] ` : '';
  const say = (line: string): void => console.error(`${prefix}${line}`);
  send({ type: 'ready', timeoutMs });

  if (opts.minimize) {
    const input = readPaths([opts.minimize])[0]!.data;
    const r = await minimize(target, input, { tries: opts.runs ?? 10_000, seconds: opts.seconds, timeoutMs, beforeInput, afterInput });
    const savedAs = saveFinding(opts.artifacts, r.finding, { target: target.name, targetPath: opts.target });
    say(`minimized ${input.length} -> ${r.input.length} bytes in ${r.tries} tries: ${savedAs}`);
    send({ type: 'done', findings: 0 });
    return 0;
  }

  if (opts.regress || opts.files.length > 0) {
    const inputs = opts.files.length > 0 ? readPaths(opts.files) : [...readInputs(opts.corpus), ...readInputs(opts.artifacts)];
    const failures = await regress(target, inputs, { timeoutMs, beforeInput, afterInput });
    for (const f of failures) say(`FAIL ${f.name}: ${f.finding.kind}\n${f.finding.stack}\n`);
    say(`${target.name}: ${inputs.length} inputs, ${failures.length} failed`);
    send({ type: 'done', findings: failures.length });
    return failures.length > 0 ? 1 : 0;
  }

  const line = (s: FuzzStats): string =>
    `#${s.runs} runs, ${s.execs} execs, ${Math.round(s.execsPerSecond)} execs/s, corpus ${s.corpus}, features ${s.features} (blocks ${s.boundaries}), findings ${s.findings}, batch ${s.batch}, ${(s.elapsedMs / 1000).toFixed(0)} s`;
  const abort = new AbortController();
  // Every signal, not only the first: a Ctrl-C reaches this process from the terminal and again
  // from the supervisor, and a second default SIGINT would kill it in the middle of an input.
  process.on('SIGINT', () => abort.abort());
  process.on('SIGTERM', () => abort.abort());
  const result = await fuzz({
    target,
    corpusDir: opts.corpus,
    artifactsDir: opts.artifacts,
    runs: opts.runs === undefined ? undefined : Math.ceil(opts.runs / opts.jobs),
    seconds: opts.seconds,
    signal: abort.signal,
    maxLen: opts.maxLen,
    seed: opts.seed + index,
    timeoutMs,
    batch: opts.batch,
    stopOnFinding: opts.stopOnFinding,
    reloadEveryMs: opts.jobs > 1 ? 5000 : 0,
    statsEveryMs: opts.statsEvery * 1000,
    onStats: (s) => {
      say(line(s));
      send({ type: 'stats', stats: s });
    },
    onFinding: (f: Finding, savedAs) => {
      say(`FINDING ${f.kind} (${f.signature})${savedAs ? ` saved as ${savedAs}` : ''}\n${f.stack}\n`);
      send({ type: 'finding', kind: f.kind, signature: f.signature, savedAs });
    },
    beforeInput,
    afterInput,
    log: say,
  });
  say(`done (${result.stoppedBy}): ${line(result)}`);
  send({ type: 'done', findings: result.findingList.length, stats: result, stoppedBy: result.stoppedBy, matchedUrls: result.matchedUrls.length });
  return result.findingList.length > 0 ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------------
// Supervisor: forks the children, watches them for hangs and deaths.

interface Job {
  index: number;
  currentFile: string;
  timeoutMs: number;
  ready: boolean;
  done: boolean;
  findings: number;
  lastCounter: number;
  lastChange: number;
  hung: boolean;
}

function readCurrent(path: string): { counter: number; running: boolean; input: Buffer } {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(HEADER);
    const n = readSync(fd, head, 0, HEADER, 0);
    if (n < HEADER) return { counter: 0, running: false, input: Buffer.alloc(0) };
    const len = head.readUInt32LE(8);
    const input = Buffer.alloc(len);
    readSync(fd, input, 0, len, HEADER);
    return { counter: head.readUInt32LE(0), running: head.readUInt32LE(4) === RUNNING, input };
  } finally {
    closeSync(fd);
  }
}

async function supervise(opts: Options, argv: string[]): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'lb-fuzz-'));
  const self = fileURLToPath(import.meta.url);
  const jobs = opts.regress || opts.minimize || opts.files.length > 0 ? 1 : opts.jobs;
  const started = performance.now();
  // Ctrl-C or SIGTERM: each job finishes its input and stops. A job killed by a signal meanwhile
  // (a `kill` aimed at it too) was stopped, not crashed: its input is no finding.
  let stopping = false;
  const procs: ChildProcess[] = [];
  const stop = (signal: NodeJS.Signals): void => {
    stopping = true;
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill(signal);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const codes = await Promise.all(
    Array.from({ length: jobs }, (_, index) => {
      const job: Job = {
        index,
        currentFile: join(dir, `job-${index}`),
        timeoutMs: DEFAULT_TIMEOUT_MS,
        ready: false,
        done: false,
        findings: 0,
        lastCounter: 0,
        lastChange: 0,
        hung: false,
      };
      closeSync(openSync(job.currentFile, 'w'));
      return new Promise<number>((resolve) => {
        // The child inherits this process's execArgv: under tsx that is its loader, so .ts targets load.
        const proc = fork(self, [...argv, '--child-index', String(index), '--current-file', job.currentFile], { stdio: 'inherit' });
        procs.push(proc);
        const watchdog = setInterval(() => {
          if (!job.ready || job.done) return;
          const now = performance.now();
          const cur = readCurrent(job.currentFile);
          if (cur.counter !== job.lastCounter || !cur.running) {
            job.lastCounter = cur.counter;
            job.lastChange = now;
            return;
          }
          // Twice the timeout: an asynchronous hang is the child's own timer's to report first.
          if (now - job.lastChange < 2 * job.timeoutMs + 1000) return;
          job.hung = true;
          proc.kill('SIGKILL');
          const stack = `the process did not come back from this input for ${Math.round(now - job.lastChange)} ms: a synchronous endless loop, or an event loop blocked that long (killed)`;
          const savedAs = saveFinding(
            opts.artifacts,
            { kind: 'hang', input: cur.input, stack, signature: 'hang' },
            { target: opts.target, targetPath: opts.target },
          );
          console.error(`FINDING hang (job ${index}) saved as ${savedAs}\n${stack}\n`);
        }, 100);
        proc.on('message', (m: ChildMessage) => {
          if (m.type === 'ready') {
            job.ready = true;
            job.timeoutMs = m.timeoutMs;
            job.lastChange = performance.now();
          } else if (m.type === 'finding') job.findings++;
          else if (m.type === 'done') job.done = true;
        });
        proc.on('exit', (code, signal) => {
          clearInterval(watchdog);
          if (job.hung) return resolve(1);
          if (code === 0 || code === 1) return resolve(code);
          if (stopping && signal !== null) {
            console.error(`job ${index} stopped by ${signal}`);
            return resolve(0);
          }
          // Died without saying why: keep the input it was running.
          const cur = readCurrent(job.currentFile);
          if (job.ready && cur.running) {
            const stack = `the fuzzing process died (${signal ? `signal ${signal}` : `exit code ${code}`}) while running this input; its output above says more`;
            const savedAs = saveFinding(
              opts.artifacts,
              { kind: 'died', input: cur.input, stack, signature: 'died' },
              { target: opts.target, targetPath: opts.target },
            );
            console.error(`FINDING died (job ${index}) saved as ${savedAs}\n${stack}\n`);
            return resolve(1);
          }
          resolve(code === 2 ? 2 : 1);
        });
      });
    }),
  );
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  rmSync(dir, { recursive: true, force: true });
  const code = codes.includes(2) ? 2 : codes.includes(1) ? 1 : 0;
  if (jobs > 1) console.error(`all ${jobs} jobs done in ${((performance.now() - started) / 1000).toFixed(0)} s: ${code === 0 ? 'no findings' : 'FINDINGS'}`);
  return code;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  let opts: Options;
  try {
    opts = parse(argv);
  } catch (error) {
    if (!(error instanceof UsageError) && !(error instanceof TypeError)) throw error;
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values } = parseArgs({ args: argv, strict: false, options: { 'child-index': { type: 'string' }, 'current-file': { type: 'string' } } });
  if (typeof values['child-index'] === 'string' && typeof values['current-file'] === 'string') {
    try {
      return await child(opts, Number(values['child-index']), values['current-file']);
    } catch (error) {
      console.error(error);
      return 2;
    }
  }
  return supervise(opts, argv);
}

main().then(
  (code) => {
    process.exitCode = code;
    // Targets may leave handles open (servers, sockets): a finished run must not wait for them.
    setImmediate(() => process.exit(code));
  },
  (error: unknown) => {
    console.error(error);
    process.exit(2);
  },
);
