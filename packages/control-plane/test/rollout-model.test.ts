import { describe, expect, it } from 'vitest';
import { nodesFor, parseRolloutRequest } from '../src/rollout/rollout-model.js';
import { MemoryConfigStore } from '../src/store/memory-config-store.js';
import { pointerText, parsePointer } from '../src/store/version-manifest.js';
import { ConfigWriter } from '../src/versioning/config-writer.js';

const write = { dryRun: false, actor: 't', source: 'test', requestId: 'r', message: 'm' };
const withPool = (name: string) => () => ({ pools: { [name]: { backends: [] } }, routes: {} });

describe('a rollout request', () => {
  it('takes steps and abort conditions, with defaults', () => {
    expect(parseRolloutRequest({ steps: [{ nodes: 1, bakeSeconds: 60 }, { percent: 25 }], abortOn: { errorRatePoints: 5, p99Ms: 500 } })).toEqual({
      ok: true,
      steps: [
        { nodes: 1, bakeSeconds: 60 },
        { percent: 25, bakeSeconds: 0 },
      ],
      abortOn: { nack: true, errorRatePoints: 5, p99Ms: 500, minRequests: 20, ackTimeoutSeconds: 600 },
    });
    expect(parseRolloutRequest({ steps: [{ nodes: 1 }], abortOn: { ackTimeoutSeconds: 30 } })).toMatchObject({ ok: true, abortOn: { ackTimeoutSeconds: 30 } });
  });

  it('names every bad field', () => {
    const parsed = parseRolloutRequest({
      steps: [{ nodes: 1, percent: 5 }, { percent: 101 }, { nodes: 0.5, bakeSeconds: -1 }],
      abortOn: { nack: 'yes', typo: 1, ackTimeoutSeconds: 0 },
      x: 1,
    });
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.errors.map((e) => e.field)).toEqual([
      'x',
      'steps[0]',
      'steps[1].percent',
      'steps[2].bakeSeconds',
      'steps[2].nodes',
      'abortOn.typo',
      'abortOn.nack',
      'abortOn.ackTimeoutSeconds',
    ]);
    expect(parseRolloutRequest({ steps: [] }).ok).toBe(false);
  });

  it('counts a step in nodes: a share rounds up, never none, never more than are connected', () => {
    expect(nodesFor({ percent: 25, bakeSeconds: 0 }, 10)).toBe(3);
    expect(nodesFor({ percent: 1, bakeSeconds: 0 }, 3)).toBe(1);
    expect(nodesFor({ nodes: 5, bakeSeconds: 0 }, 3)).toBe(3);
  });
});

describe('staged versions', () => {
  it('take the next number without moving the pointer; a plain write goes above them; promote makes one current', async () => {
    const store = new MemoryConfigStore();
    const writer = new ConfigWriter(store);
    expect((await writer.write(write, withPool('a'))).version).toBe(1);
    const staged = await writer.write({ ...write, stage: true }, withPool('b'));
    expect(staged).toMatchObject({ version: 2, committed: true, staged: true });
    expect(await store.pointer()).toEqual({ version: 1, historyId: expect.any(String), staged: 2 });
    expect((await store.getVersion(2))?.staged).toBe(true);
    // A second staged write is based on the current version too, and numbered above the first.
    expect((await writer.write({ ...write, stage: true }, withPool('c'))).version).toBe(3);
    const pointer = await store.pointer();
    expect(await store.promote(2, { ...pointer, version: 0 })).toBe(false);
    expect(await store.promote(2, pointer)).toBe(true);
    expect(await store.pointer()).toEqual({ version: 2, historyId: pointer.historyId, staged: 3 });
    expect(Object.keys((await store.current()).config.pools)).toEqual(['b']);
    // A plain write lands above every staged version; the staged ones are left below it.
    expect((await writer.write(write, withPool('d'))).version).toBe(4);
    expect(await store.pointer()).toEqual({ version: 4, historyId: pointer.historyId });
  });

  it('keep the pointer text of a store that never staged', () => {
    expect(pointerText({ version: 3, historyId: 'h' })).toBe('{"version":3,"historyId":"h"}');
    expect(parsePointer('{"version":3,"historyId":"h","staged":5}', 'k')).toEqual({ version: 3, historyId: 'h', staged: 5 });
    expect(parsePointer('{"version":3,"historyId":"h","staged":2}', 'k')).toEqual({ version: 3, historyId: 'h' });
  });

  it('a write that changes nothing commits a version only when asked (a rollout rolling back)', async () => {
    const store = new MemoryConfigStore();
    const writer = new ConfigWriter(store);
    await writer.write(write, withPool('a'));
    expect((await writer.write(write, withPool('a'))).committed).toBe(false);
    expect(await writer.write({ ...write, evenIfUnchanged: true }, withPool('a'))).toMatchObject({ version: 2, committed: true, changes: [] });
  });
});
