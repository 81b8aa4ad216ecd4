/**
 * lbctl's exit codes: stable, so scripts and CI can branch on them (documented in the README and
 * in `lbctl --help`).
 */
export const EXIT = {
  /** Done; for `diff`, the file matches what runs. */
  OK: 0,
  /** `diff` only: the file and what runs differ. */
  DRIFT: 1,
  /** A bad command, flag, argument or file; nothing was sent. */
  USAGE: 2,
  /** The control plane refused the request as invalid or not found (400, 404, 405, 409, 410, 413, 415). */
  REJECTED: 3,
  /** No token, a wrong one, or a role too low (401, 403). */
  AUTH: 4,
  /** The config changed since it was read (412, or a write that kept losing races): nothing was applied. */
  CONFLICT: 5,
  /** The control plane could not be reached or failed (connection error, timeout, 5xx). */
  UNAVAILABLE: 6,
  /** `apply`/`rollback` were not confirmed: answered no, or no terminal and no --yes. */
  NOT_CONFIRMED: 7,
  /** `watch nodes --until-converged` ran out of time. */
  TIMEOUT: 8,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export const EXIT_CODES_HELP = `Exit codes:
  0  done; diff: the file matches what runs
  1  diff: the file and what runs differ
  2  bad command, flag, argument or file (nothing was sent)
  3  refused by the control plane as invalid or not found
  4  no token, a wrong one, or a role too low
  5  the config changed since it was read (If-Match lost): nothing applied
  6  control plane unreachable or failing (5xx)
  7  not confirmed: no terminal and no --yes, or answered no
  8  watch --until-converged timed out`;

/** An error that ends lbctl with `code`, printing `message` (and `details`, one per line) on stderr. */
export class CliError extends Error {
  constructor(
    readonly code: ExitCode,
    message: string,
    readonly details: string[] = [],
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** The exit code of an HTTP error status from the control plane. */
export function exitCodeOfStatus(status: number, problemCode?: string): ExitCode {
  if (status === 401 || status === 403) return EXIT.AUTH;
  if (status === 412 || problemCode === 'LB_CP_CONFLICT') return EXIT.CONFLICT;
  if (status >= 500) return EXIT.UNAVAILABLE;
  return EXIT.REJECTED;
}
