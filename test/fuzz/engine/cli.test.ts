import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha1 } from './corpus.js';

const TSX = resolve('node_modules/.bin/tsx');
const CLI = resolve('test/fuzz/engine/cli.ts');
const FIXTURES = resolve('test/fuzz/engine/fixtures');

/** Runs the CLI to its end; resolves with its exit code and output. */
function cli(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((done, fail) => {
    const proc = spawn(TSX, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
    proc.stderr.on('data', (b: Buffer) => (out += b.toString()));
    proc.on('error', fail);
    proc.on('exit', (code) => done({ code, out }));
  });
}

function dirs(seeds: Record<string, string> = {}): { corpus: string; artifacts: string } {
  const root = mkdtempSync(join(tmpdir(), 'fuzz-cli-'));
  const corpus = join(root, 'corpus');
  mkdirSync(corpus);
  for (const [name, text] of Object.entries(seeds)) writeFileSync(join(corpus, name), text);
  return { corpus, artifacts: join(root, 'artifacts') };
}

describe('fuzz CLI', { timeout: 60_000 }, () => {
  it('a bounded run stops by itself, prints execs/s and exits 0 without findings', async () => {
    const { corpus, artifacts } = dirs({ get: 'GET / HTTP/1.1\r\n\r\n' });
    const r = await cli(['--target', `${FIXTURES}/magic.ts`, '--corpus', corpus, '--artifacts', artifacts, '--runs', '3000', '--seed', '5']);
    expect(r.out).toMatch(/done \(runs\): #3000 runs, \d+ execs, \d+ execs\/s, corpus \d+/);
    expect(r.code).toBe(0);
    // The new corpus entries are on disk beside the seed, named by their hash.
    const names = readdirSync(corpus);
    expect(names.length).toBeGreaterThan(1);
    for (const n of names.filter((n) => n !== 'get')) expect(sha1(readFileSync(join(corpus, n)))).toBe(n);
  });

  it('exits 1 on a finding and replays it from its artifact', async () => {
    const { corpus, artifacts } = dirs({ near: 'FUZz' });
    const r = await cli(['--target', `${FIXTURES}/magic.ts`, '--corpus', corpus, '--artifacts', artifacts, '--runs', '20000', '--stop-on-finding']);
    expect(r.code).toBe(1);
    expect(r.out).toContain('FINDING threw');
    const crash = readdirSync(artifacts).find((n) => n.startsWith('crash-') && !n.endsWith('.log'))!;
    expect(readFileSync(join(artifacts, crash)).subarray(0, 4).toString()).toBe('FUZZ');

    const replay = await cli(['--target', `${FIXTURES}/magic.ts`, join(artifacts, crash)]);
    expect(replay.code).toBe(1);
    expect(replay.out).toContain('FUZZ found');
    // --regress runs corpus and artifacts: the saved crash fails it until fixed.
    const regress = await cli(['--target', `${FIXTURES}/magic.ts`, '--corpus', corpus, '--artifacts', artifacts, '--regress']);
    expect(regress.code).toBe(1);
    expect(regress.out).toMatch(/magic: \d+ inputs, 1 failed/);
  });

  it('catches a synchronous endless loop no in-process timer can, and saves its input', async () => {
    const { corpus, artifacts } = dirs({ a: 'GET', b: 'LOOP forever' });
    const r = await cli(['--target', `${FIXTURES}/loop.ts`, '--corpus', corpus, '--artifacts', artifacts, '--regress', '--timeout', '200']);
    expect(r.code).toBe(1);
    expect(r.out).toContain('FINDING hang');
    const name = `timeout-${sha1(Buffer.from('LOOP forever'))}`;
    expect(readFileSync(join(artifacts, name), 'latin1')).toBe('LOOP forever');
    expect(readFileSync(join(artifacts, `${name}.log`), 'utf8')).toContain('kind: hang');
  });

  it('saves the input a process died on', async () => {
    const { corpus, artifacts } = dirs({ a: 'GET', b: 'KILL' });
    const r = await cli(['--target', `${FIXTURES}/loop.ts`, '--corpus', corpus, '--artifacts', artifacts, '--regress']);
    expect(r.code).toBe(1);
    expect(r.out).toContain('FINDING died');
    expect(readFileSync(join(artifacts, `crash-${sha1(Buffer.from('KILL'))}`), 'latin1')).toBe('KILL');
  });

  it('stops cleanly on Ctrl-C (SIGINT to the whole process group), with no finding', async () => {
    const { corpus, artifacts } = dirs({ a: 'GET' });
    // Its own process group, as a terminal's foreground job: tsx, the supervisor and the fuzzing process.
    const proc = spawn(TSX, [CLI, '--target', `${FIXTURES}/slow.ts`, '--corpus', corpus, '--artifacts', artifacts, '--seconds', '60', '--stats-every', '0.2'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    const exited = new Promise<number | null>((done) => proc.on('exit', (code) => done(code)));
    await new Promise<void>((running) => {
      const read = (b: Buffer) => {
        out += b.toString();
        // A stats line: the fuzzing process is in its loop, an input (nearly) always running.
        if (/#\d+ runs/.test(out)) running();
      };
      proc.stdout.on('data', read);
      proc.stderr.on('data', read);
    });
    process.kill(-proc.pid!, 'SIGINT');
    expect(await exited).toBe(0);
    expect(out).toMatch(/done \(signal\)/);
    expect(out).not.toContain('FINDING');
    expect(existsSync(artifacts) ? readdirSync(artifacts) : []).toEqual([]);
  });

  it('a clean regression run exits 0; a bad option exits 2', async () => {
    const { corpus, artifacts } = dirs({ a: 'GET', b: 'FUZ' });
    const ok = await cli(['--target', `${FIXTURES}/magic.ts`, '--corpus', corpus, '--artifacts', artifacts, '--regress']);
    expect(ok.out).toContain('magic: 2 inputs, 0 failed');
    expect(ok.code).toBe(0);
    const bad = await cli(['--target', `${FIXTURES}/magic.ts`, '--runs', 'many']);
    expect(bad.code).toBe(2);
    expect(bad.out).toContain('--runs must be a number');
  });
});
