/**
 * Command-line flags with LB_* environment fallbacks (`--http-listen` ↔ LB_HTTP_LISTEN).
 * A bad flag is a message on stderr and exit code 2, never a half-started process.
 */
import { parseArgs } from 'node:util';
import { parseHostPort, type HostPort } from '../config/address.js';

export interface FlagSpec {
  description: string;
  default?: string;
  required?: boolean;
  /** A flag without a value (`--foo`); its env form is `1`/`true`. */
  boolean?: boolean;
}

export class FlagError extends Error {}

export type FlagValues<S extends Record<string, FlagSpec>> = { [K in keyof S]: string | undefined };

function envName(flag: string): string {
  return `LB_${flag.replace(/-/g, '_').toUpperCase()}`;
}

export function usage(command: string, spec: Record<string, FlagSpec>): string {
  const lines = Object.entries(spec).map(([name, s]) => {
    const def = s.default !== undefined ? ` (default ${s.default})` : s.required ? ' (required)' : '';
    return `  --${name}${s.boolean ? '' : ' VALUE'}\n      ${s.description}${def}; env ${envName(name)}`;
  });
  return `usage: ${command} [flags]\n${lines.join('\n')}\n  --help\n      print this help\nenvironment:\n  LB_LOG_LEVEL\n      fatal, error, warn, info, debug, trace or silent (default info)`;
}

/** Parses argv; throws FlagError with a readable message on anything unknown or missing. */
export function parseFlags<S extends Record<string, FlagSpec>>(
  argv: string[],
  spec: S,
  env: NodeJS.ProcessEnv = process.env,
): FlagValues<S> & { help: boolean } {
  const options: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } };
  for (const [name, s] of Object.entries(spec)) options[name] = { type: s.boolean ? 'boolean' : 'string' };
  let parsed: Record<string, string | boolean | undefined>;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as Record<string, string | boolean | undefined>;
  } catch (err) {
    throw new FlagError((err as Error).message);
  }
  const out: Record<string, string | undefined> = {};
  for (const [name, s] of Object.entries(spec)) {
    const given = parsed[name];
    let value: string | undefined = typeof given === 'boolean' ? String(given) : given;
    value ??= env[envName(name)] ?? s.default;
    if (value === '' && !s.boolean) throw new FlagError(`--${name} must not be empty`);
    if (value === undefined && s.required && parsed.help !== true) throw new FlagError(`--${name} is required (or set ${envName(name)})`);
    out[name] = value;
  }
  return { ...(out as FlagValues<S>), help: parsed.help === true };
}

/** `host:port` flag values; the message names the flag at fault. */
export function hostPortFlag(flag: string, value: string): HostPort {
  const parsed = parseHostPort(value);
  if (typeof parsed === 'string') throw new FlagError(`--${flag} "${value}": ${parsed}`);
  return parsed;
}

/** A flag value that must be one of `choices`; the message lists them. */
export function choiceFlag<T extends string>(flag: string, value: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value)) throw new FlagError(`--${flag} must be one of ${choices.join(', ')}`);
  return value as T;
}

export function listFlag(flag: string, value: string): string[] {
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (items.length === 0) throw new FlagError(`--${flag} needs at least one value`);
  return items;
}

/** Runs main(), turning FlagError into `message + usage` on stderr and exit code 2. */
export async function runMain(command: string, spec: Record<string, FlagSpec>, main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (err) {
    if (err instanceof FlagError) {
      process.stderr.write(`${command}: ${err.message}\n\n${usage(command, spec)}\n`);
      process.exit(2);
    }
    throw err;
  }
}
