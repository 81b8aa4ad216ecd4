import { describe, expect, it } from 'vitest';
import { FlagError, usage } from '../src/runtime/flags.js';
import { createLogger } from '../src/runtime/logger.js';

describe('createLogger', () => {
  it('refuses an unknown LB_LOG_LEVEL with a FlagError naming the levels, so mains exit 2 with usage', () => {
    expect(() => createLogger('t', 'verbose')).toThrow(FlagError);
    expect(() => createLogger('t', 'verbose')).toThrow(/LB_LOG_LEVEL "verbose" is not a log level: use one of fatal, error, warn, info, debug, trace, silent/);
  });

  it('accepts every pino level', () => {
    for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) expect(createLogger('t', level).level).toBe(level);
  });

  it('usage documents LB_LOG_LEVEL', () => {
    expect(usage('cmd', {})).toMatch(/LB_LOG_LEVEL\n.*default info/);
  });
});
