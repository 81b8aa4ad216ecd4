import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * Every fuzz target's corpus and saved findings, replayed once: a fixed crash stays fixed, and a change
 * that breaks an input the fuzzer once explored fails here. Each target runs through the CLI (--regress),
 * in its own process under the CLI's watchdog, so that a synchronous endless loop fails the test instead
 * of wedging the test runner.
 *
 * A target is test/fuzz/targets/NAME.ts; its inputs are test/fuzz/corpus/NAME/ and test/fuzz/artifacts/NAME/.
 */
const TARGETS = resolve('test/fuzz/targets');
const targets = existsSync(TARGETS)
  ? readdirSync(TARGETS)
      .filter((n) => n.endsWith('.ts') && !n.endsWith('.test.ts') && !n.endsWith('.d.ts'))
      .sort()
  : [];

function regress(target: string): Promise<{ code: number | null; out: string }> {
  return new Promise((done, fail) => {
    const proc = spawn(resolve('node_modules/.bin/tsx'), [resolve('test/fuzz/engine/cli.ts'), '--target', join(TARGETS, target), '--regress'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
    proc.stderr.on('data', (b: Buffer) => (out += b.toString()));
    proc.on('error', fail);
    proc.on('exit', (code) => done({ code, out }));
  });
}

describe('fuzz regression', { timeout: 120_000 }, () => {
  it('finds the fuzz targets (an empty list would make this suite pass by checking nothing)', () => {
    expect(targets.map((t) => basename(t, '.ts'))).toEqual(
      expect.arrayContaining(['server', 'upstream', 'tls-client-hello', 'proxy-protocol', 'http2-server', 'http2-upstream']),
    );
  });
  for (const target of targets) {
    it(`${basename(target, '.ts')}: every corpus input and saved finding passes`, async () => {
      const r = await regress(target);
      expect(r.out).toMatch(/: \d+ inputs, 0 failed/);
      expect(r.code, r.out).toBe(0);
    });
  }
});
