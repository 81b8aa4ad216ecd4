/** One pino setup for every process: JSON lines to stdout, level from LB_LOG_LEVEL (default info). */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(name: string, level = process.env.LB_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid } });
}
