/**
 * The data plane's layering rules, checked on the source: the request path (proxy/) knows nothing
 * of how snapshots arrive or are cached, the snapshot side (config/, cache/) nothing of the request
 * path, and only http1/ knows node's private HTTP parser binding.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = new URL('../src/', import.meta.url).pathname;

function sources(dir: string): { file: string; text: string }[] {
  return readdirSync(join(SRC, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => ({ file: `${dir}/${f}`, text: readFileSync(join(SRC, dir, f), 'utf8') }));
}

function importsOf(text: string): string[] {
  return [...text.matchAll(/from '([^']+)'/g)].map((m) => m[1]!);
}

describe('data-plane layering', () => {
  it('proxy/ imports neither config/ nor cache/', () => {
    const bad = sources('proxy').flatMap(({ file, text }) =>
      importsOf(text)
        .filter((i) => /\/(config|cache)\//.test(i))
        .map((i) => `${file} → ${i}`),
    );
    expect(bad).toEqual([]);
  });

  it('config/ and cache/ do not import proxy/', () => {
    const bad = [...sources('config'), ...sources('cache')].flatMap(({ file, text }) =>
      importsOf(text)
        .filter((i) => i.includes('/proxy/'))
        .map((i) => `${file} → ${i}`),
    );
    expect(bad).toEqual([]);
  });

  it("only http1/ reaches node's parser binding", () => {
    const all = readdirSync(SRC, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts') && !f.startsWith('http1/'));
    const bad = all.filter((f) => /_http_common|kOnHeadersComplete/.test(readFileSync(join(SRC, f), 'utf8')));
    expect(bad).toEqual([]);
  });
});
