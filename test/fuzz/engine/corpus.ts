import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Finding, FindingKind } from './types.js';

/**
 * Corpus and artifacts on disk, as libFuzzer lays them out: one input per file, named by the SHA-1 of its
 * bytes (so two jobs saving the same input write the same file), no extension. A finding is saved as
 * `<crash|timeout>-<sha1>` beside `<crash|timeout>-<sha1>.log`, which holds the stack and how to replay it.
 */

export const REPORT_SUFFIX = '.log';

export function sha1(data: Uint8Array): string {
  return createHash('sha1').update(data).digest('hex');
}

export interface StoredInput {
  name: string;
  path: string;
  data: Buffer;
}

/** The inputs in a directory (not its subdirectories), in name order; none when it does not exist. Skips dotfiles and reports. */
export function readInputs(dir: string): StoredInput[] {
  if (!existsSync(dir)) return [];
  const out: StoredInput[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith('.') || name.endsWith(REPORT_SUFFIX) || name === 'README.md') continue;
    const path = join(dir, name);
    if (!statSync(path).isFile()) continue;
    out.push({ name, path, data: readFileSync(path) });
  }
  return out;
}

/** The inputs named on a command line: files as they are, directories as readInputs() reads them. */
export function readPaths(paths: readonly string[]): StoredInput[] {
  return paths.flatMap((p) => (statSync(p).isDirectory() ? readInputs(p) : [{ name: p, path: p, data: readFileSync(p) }]));
}

/** Saves one corpus input under its hash; returns its file name. */
export function saveInput(dir: string, data: Uint8Array): string {
  mkdirSync(dir, { recursive: true });
  const name = sha1(data);
  const path = join(dir, name);
  if (!existsSync(path)) writeFileSync(path, data);
  return name;
}

export function artifactPrefix(kind: FindingKind): 'crash' | 'timeout' {
  return kind === 'timeout' || kind === 'hang' ? 'timeout' : 'crash';
}

/** Saves a finding's input and its report; returns the input's path. */
export function saveFinding(dir: string, finding: Finding, context: { target: string; targetPath?: string }): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${artifactPrefix(finding.kind)}-${sha1(finding.input)}`);
  writeFileSync(path, finding.input);
  const replay = context.targetPath ? `pnpm fuzz --target ${context.targetPath} ${path}` : `(replay with the target's CLI) ${path}`;
  const report = [
    `target: ${context.target}`,
    `kind: ${finding.kind}`,
    `signature: ${finding.signature}`,
    `input: ${finding.input.length} bytes`,
    `replay: ${replay}`,
    '',
    finding.stack,
    '',
    'input (JSON string):',
    JSON.stringify(finding.input.toString('latin1')),
    '',
  ].join('\n');
  writeFileSync(path + REPORT_SUFFIX, report);
  return path;
}
