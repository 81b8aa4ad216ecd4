import type { Finding, FindingKind, FuzzTarget } from './types.js';

export const DEFAULT_TIMEOUT_MS = 2000;

/**
 * Runs one input at a time and turns everything that goes wrong during it into a Finding: a throw, a
 * rejection, an exception or rejection nobody caught in work the input started (callbacks, timers,
 * events), a call to process.exit(), and a promise that does not settle within the timeout.
 *
 * An input ends when run() returns (or its promise settles) and then one more turn of the event loop
 * (a setImmediate) has passed, so that what the input scheduled for "right after" (an immediate, a
 * nextTick, a rejected promise nobody awaited) fails on this input and not on the next. Work that
 * outlives that turn is attributed to whichever input is running when it fails.
 *
 * While installed, the runner owns the process's uncaughtException and unhandledRejection listeners and
 * process.exit: the ones that were there (vitest's, for instance) are put back by uninstall().
 */
export class InputRunner {
  readonly #target: FuzzTarget;
  readonly #timeoutMs: number;
  #installed = false;
  #saved: { uncaught: NodeJS.UncaughtExceptionListener[]; unhandled: NodeJS.UnhandledRejectionListener[]; exit: typeof process.exit } | undefined;
  /** The failure caught by a process-level listener during the current input. */
  #escaped: { kind: FindingKind; error: unknown } | undefined;
  /** Wakes the current input's wait early when a process-level failure arrives. */
  #wake: (() => void) | undefined;
  #onUncaught = (error: unknown): void => this.#escape('uncaughtException', error);
  #onUnhandled = (reason: unknown): void => this.#escape('unhandledRejection', reason);

  constructor(target: FuzzTarget, timeoutMs?: number) {
    this.#target = target;
    this.#timeoutMs = timeoutMs ?? target.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  install(): void {
    if (this.#installed) return;
    this.#saved = {
      uncaught: process.listeners('uncaughtException'),
      unhandled: process.listeners('unhandledRejection'),
      exit: process.exit,
    };
    process.removeAllListeners('uncaughtException');
    process.removeAllListeners('unhandledRejection');
    process.on('uncaughtException', this.#onUncaught);
    process.on('unhandledRejection', this.#onUnhandled);
    process.exit = ((code?: number | string | null) => {
      throw new ProcessExitError(code);
    }) as typeof process.exit;
    this.#installed = true;
  }

  uninstall(): void {
    if (!this.#installed || !this.#saved) return;
    process.off('uncaughtException', this.#onUncaught);
    process.off('unhandledRejection', this.#onUnhandled);
    for (const l of this.#saved.uncaught) process.on('uncaughtException', l);
    for (const l of this.#saved.unhandled) process.on('unhandledRejection', l);
    process.exit = this.#saved.exit;
    this.#installed = false;
  }

  #escape(kind: FindingKind, error: unknown): void {
    // The first failure of an input is the one reported; later ones are usually its consequences.
    if (!this.#escaped) this.#escaped = { kind: error instanceof ProcessExitError ? 'exit' : kind, error };
    this.#wake?.();
  }

  /** Runs one input; resolves to the finding it caused, or undefined. Never rejects. */
  async run(input: Buffer): Promise<Finding | undefined> {
    if (!this.#installed) throw new Error('InputRunner.run() before install()');
    this.#escaped = undefined;
    // A copy: the target may keep it (hand it to a socket) while the engine reuses its buffers.
    const data = Buffer.from(input);
    let result: void | Promise<void>;
    try {
      result = this.#target.run(data);
    } catch (error) {
      await settle();
      return this.#finding(error instanceof ProcessExitError ? 'exit' : 'threw', error, input);
    }
    if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
      const outcome = await this.#wait(result as Promise<void>);
      if (outcome !== undefined) {
        await settle();
        return this.#finding(outcome.kind, outcome.error, input);
      }
    }
    await settle();
    const escaped = this.#escapedDuringInput();
    return escaped ? this.#finding(escaped.kind, escaped.error, input) : undefined;
  }

  /** Read through a method: TypeScript would otherwise assume the listeners never ran since the reset. */
  #escapedDuringInput(): { kind: FindingKind; error: unknown } | undefined {
    return this.#escaped;
  }

  /** Waits for the target's promise, the timeout, or a process-level failure, whichever comes first. */
  #wait(promise: Promise<void>): Promise<{ kind: FindingKind; error: unknown } | undefined> {
    return new Promise((resolve) => {
      let done = false;
      const finish = (outcome: { kind: FindingKind; error: unknown } | undefined): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.#wake = undefined;
        resolve(outcome);
      };
      const timer = setTimeout(() => finish({ kind: 'timeout', error: new Error(`input did not settle within ${this.#timeoutMs} ms`) }), this.#timeoutMs);
      this.#wake = () => finish(this.#escaped);
      promise.then(
        () => finish(undefined),
        (error: unknown) => finish({ kind: error instanceof ProcessExitError ? 'exit' : 'rejected', error }),
      );
    });
  }

  #finding(kind: FindingKind, error: unknown, input: Buffer): Finding {
    return makeFinding(kind, error, input);
  }
}

/** Thrown in place of exiting when a target calls process.exit() under the runner. */
export class ProcessExitError extends Error {
  constructor(code: unknown) {
    super(`the target called process.exit(${code === undefined ? '' : String(code)})`);
    this.name = 'ProcessExitError';
  }
}

/** One turn of the event loop: immediates, nextTicks and promise jobs the input queued have run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export function makeFinding(kind: FindingKind, error: unknown, input: Buffer): Finding {
  const stack = error instanceof Error ? (error.stack ?? `${error.name}: ${error.message}`) : `non-Error thrown: ${safeString(error)}`;
  return { kind, input: Buffer.from(input), stack, signature: signatureOf(kind, error) };
}

function safeString(value: unknown): string {
  try {
    return typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  } catch {
    return String(value);
  }
}

/**
 * The bug's identity: failure kind, error name and the top three frames that are not Node's own nor the
 * engine's (file name:line:column). Messages stay out: they often quote the input. A timeout is one bug per
 * target whatever its input.
 */
const ENGINE_FRAME = /\/fuzz\/engine\/(runner|fuzzer)\./;

export function signatureOf(kind: FindingKind, error: unknown): string {
  if (kind === 'timeout' || kind === 'hang') return kind;
  if (!(error instanceof Error)) return `${kind}|non-Error|${typeof error}`;
  const lines = (error.stack ?? '').split('\n').map((l) => l.trim());
  const frames: string[] = [];
  for (const l of lines) {
    if (!l.startsWith('at ') || l.includes('node:internal')) continue;
    // Below the engine's first frame are the engine's callers (the CLI, a test): not part of the bug.
    if (ENGINE_FRAME.test(l) || frames.length === 3) break;
    const loc = /\(?([^()\s]+:\d+:\d+)\)?$/.exec(l);
    frames.push(loc ? loc[1]!.replace(/^.*\//, '') : l);
  }
  return `${kind === 'rejected' || kind === 'threw' || kind === 'uncaughtException' || kind === 'unhandledRejection' ? 'error' : kind}|${error.name}|${frames.join('|')}`;
}
