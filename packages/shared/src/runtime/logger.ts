/** One pino setup for every process: JSON lines to stdout, level from LB_LOG_LEVEL (default info). */
import { pino, type Logger } from 'pino';
import { FlagError } from './flags.js';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * Throws FlagError for a level pino does not know, so a main run by runMain prints the usage and
 * exits 2 (pino itself would throw a plain error: a stack trace and exit 1).
 */
export function createLogger(name: string, level = process.env.LB_LOG_LEVEL ?? 'info'): Logger {
  if (!(LOG_LEVELS as readonly string[]).includes(level))
    throw new FlagError(`LB_LOG_LEVEL "${level}" is not a log level: use one of ${LOG_LEVELS.join(', ')}`);
  return pino({ name, level, base: { pid: process.pid } });
}
