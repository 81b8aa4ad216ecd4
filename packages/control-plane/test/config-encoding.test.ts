/**
 * The pieces a write is made of: content-defined chunking, encoding with reuse of unchanged texts,
 * and the copy-on-write draft a mutation changes.
 */
import { describe, expect, it } from 'vitest';
import type { Config, Pool } from '@lb/shared';
import { splitText } from '../src/store/chunking.js';
import { deepFreeze } from '../src/store/deep-freeze.js';
import { changedKeys, encodeConfig } from '../src/store/encoded-config.js';
import { draftOf } from '../src/versioning/config-draft.js';

const sizes = { minChars: 256, maxChars: 4096, bits: 10 };

function poolOf(n: number, weight = (_i: number) => 1): Pool {
  return {
    algorithm: 'round_robin',
    backends: Array.from({ length: n }, (_, i) => ({ id: `b-${i}`, address: `10.0.${i >> 8}.${i & 255}:80`, weight: weight(i), state: 'active' as const })),
  };
}

describe('splitText', () => {
  it('keeps a short text whole and splits a long one into bounded chunks that join back', () => {
    expect(splitText('short', sizes)).toEqual(['short']);
    const text = JSON.stringify(poolOf(2000));
    const chunks = splitText(text, sizes);
    expect(chunks.join('')).toBe(text);
    expect(chunks.length).toBeGreaterThan(10);
    for (const c of chunks.slice(0, -1)) {
      expect(c.length).toBeGreaterThanOrEqual(sizes.minChars);
      expect(c.length).toBeLessThanOrEqual(sizes.maxChars);
    }
  });

  it('cuts where the content says, so changing one backend changes one or two chunks', () => {
    const before = splitText(JSON.stringify(poolOf(2000)), sizes);
    const after = splitText(JSON.stringify(poolOf(2000, (i) => (i === 1000 ? 77 : 1))), sizes);
    const old = new Set(before);
    expect(after.filter((c) => !old.has(c)).length).toBeLessThanOrEqual(2);
  });

  it('never cuts a surrogate pair in two', () => {
    const text = '😀'.repeat(10_000);
    for (const c of splitText(text, sizes)) expect(Buffer.from(c, 'utf8').toString('utf8')).toBe(c);
  });
});

describe('encodeConfig', () => {
  const config = {
    pools: { web: poolOf(3), 'api-v2': poolOf(2) },
    routes: { main: { match: { pathPrefix: '/é' }, pools: [{ pool: 'web', weight: 1 }] } },
  } as Config;

  it('counts the bytes of the whole document exactly', () => {
    expect(encodeConfig(config).bytes).toBe(Buffer.byteLength(JSON.stringify(config)));
    expect(encodeConfig({ pools: {}, routes: {} }).bytes).toBe(Buffer.byteLength(JSON.stringify({ pools: {}, routes: {} })));
  });

  it('reuses the text of resources that are the same objects, and tells what changed', () => {
    const before = encodeConfig(config);
    const next: Config = { ...config, pools: { ...config.pools, web: { ...config.pools.web!, algorithm: 'random' } } };
    const after = encodeConfig(next, before);
    expect(after.resources.get('pools/api-v2')!.json).toBe(before.resources.get('pools/api-v2')!.json);
    expect([...changedKeys(before, after)]).toEqual(['pools/web']);
    const { 'api-v2': _gone, ...rest } = next.pools;
    expect([...changedKeys(after, encodeConfig({ ...next, pools: rest }, after))]).toEqual(['pools/api-v2']);
  });
});

describe('draftOf', () => {
  const stored = deepFreeze({ pools: { web: poolOf(2), api: poolOf(1) }, routes: {} } as Config);

  it('clones a resource when the mutation reads it and leaves the others the stored objects', () => {
    const draft = draftOf(stored);
    draft.config.pools.web!.backends.push({ id: 'new', address: '10.9.9.9:80', weight: 1, state: 'active' });
    const result = draft.settle(draft.config) as Config;
    expect(result.pools.web!.backends).toHaveLength(3);
    expect(stored.pools.web!.backends).toHaveLength(2);
    expect(result.pools.api).toBe(stored.pools.api);
    expect(Object.isFrozen(result.pools)).toBe(false);
  });

  it('supports adding, deleting and listing resources, and results that are not the draft', () => {
    const draft = draftOf(stored);
    delete draft.config.pools.api;
    draft.config.pools.extra = poolOf(1);
    expect(Object.keys(draft.config.pools)).toEqual(['web', 'extra']);
    const result = draft.settle(draft.config) as Config;
    expect(Object.keys(result.pools)).toEqual(['web', 'extra']);
    const other = { pools: {}, routes: {} };
    expect(draft.settle(other)).toEqual(other);
  });
});
