/**
 * What a fuzz target is, and what the engine reports about it. A target module exports
 * `export const target: FuzzTarget = { ... }` (a default export works too).
 */
export interface FuzzTarget {
  /** Names the target in reports and in the default corpus/artifacts directories (test/fuzz/corpus/<name>). */
  readonly name: string;
  /**
   * Which scripts' coverage guides the fuzzer, matched against the script URL V8 reports (a file:// URL
   * under tsx, a plain absolute path under vitest): a substring, a RegExp, or a predicate. Keep the
   * engine and the harness out of it: only the code under test should count, e.g. '/packages/data-plane/'.
   */
  readonly coverageFilter: CoverageFilter;
  /**
   * Handles one input. Throw (or reject) to report a finding; return (or resolve) once the input is fully
   * handled, e.g. when the exchange it drives has settled. The Buffer is the target's to keep.
   */
  run(data: Buffer): void | Promise<void>;
  /** Tokens the mutator inserts and overwrites with: header names, methods, framing keywords. */
  readonly dictionary?: readonly string[];
  /** Per-input timeout in milliseconds, for targets that know better than the engine's default (2000). */
  readonly timeoutMs?: number;
  /** Runs once before the first input (start a listener, warm a pool). Its coverage is not counted. */
  setup?(): void | Promise<void>;
  /** Runs once after the last input. */
  teardown?(): void | Promise<void>;
}

export type CoverageFilter = string | RegExp | ((url: string) => boolean);

/** How an input went wrong. */
export type FindingKind =
  /** run() threw synchronously. */
  | 'threw'
  /** run()'s promise rejected. */
  | 'rejected'
  /** An exception nobody caught, thrown by work the input started (a callback, a timer, an event). */
  | 'uncaughtException'
  /** A promise rejection nobody handled, from work the input started. */
  | 'unhandledRejection'
  /** The target called process.exit(). */
  | 'exit'
  /** run()'s promise neither resolved nor rejected within the timeout. */
  | 'timeout'
  /** The fuzzing process itself stopped answering (a synchronous endless loop) or died; found by the CLI's supervisor. */
  | 'hang'
  | 'died';

export interface Finding {
  kind: FindingKind;
  /** The input that caused it. */
  input: Buffer;
  /** The thrown value's stack (or its string form). */
  stack: string;
  /**
   * What makes two findings the same bug: the kind of failure, the error's name and its top stack
   * frames (not the message, which often echoes the input). Used to save each bug once.
   */
  signature: string;
}
