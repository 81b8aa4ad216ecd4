/** lbctl run as a real process (the built CLI), with its exit code, stdout and stderr apart. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const LBCTL = fileURLToPath(new URL('../../packages/cli/bin/lbctl.js', import.meta.url));

export interface LbctlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `lbctl ...args` with `env` added to a clean environment (no LB_* of the caller's), stdin
 * closed at once (not a terminal, as in CI) or fed `input`.
 */
export function lbctl(args: string[], env: Record<string, string> = {}, input?: string): Promise<LbctlResult> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LB_') && k !== 'LBCTL_CONFIG'));
  const child = spawn(process.execPath, [LBCTL, ...args], { env: { ...base, HOME: '/nonexistent', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdin.end(input ?? '');
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}
