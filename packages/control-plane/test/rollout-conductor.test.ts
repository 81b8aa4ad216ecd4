// The rollout driver's decisions, one tick at a time over in-memory stores and a clock the test
// moves: steps add nodes in id order and wait for their ACKs and their bake; a NACK, an error
// rate above the baseline's, or a p99 above the bound aborts and commits the baseline's content
// above the staged version; the last step makes the version current.
import { createLogger, type TrafficReport } from '@lb/shared';
import { beforeEach, describe, expect, it } from 'vitest';
import type { Leadership } from '../src/health/leader-election.js';
import { RolloutConductor } from '../src/rollout/rollout-conductor.js';
import type { AbortOn, RolloutRecord, RolloutStep } from '../src/rollout/rollout-model.js';
import { MemoryRolloutStore } from '../src/rollout/rollout-store.js';
import { TrafficStats } from '../src/stats/traffic-stats.js';
import { MemoryConfigStore } from '../src/store/memory-config-store.js';
import { MemoryNodeStore } from '../src/store/memory-node-store.js';
import type { NodeRecord } from '../src/store/node-store.js';
import { ConfigWriter } from '../src/versioning/config-writer.js';

const logger = createLogger('test', 'silent');
const leader: Leadership = { isLeader: true, fence: () => undefined, onChange: () => undefined };
const BOUNDS = [1, 10, 100];

let configs: MemoryConfigStore;
let writer: ConfigWriter;
let rollouts: MemoryRolloutStore;
let traffic: TrafficStats;
let held: NodeRecord[];
let now: number;
let conductor: RolloutConductor;

const write = { dryRun: false, actor: 't', source: 's', requestId: 'r', message: 'm' };

function node(id: string, configVersion: number): NodeRecord {
  return { id, address: '', zone: '', connectedAt: '2026-01-01T00:00:00.000Z', configVersion, healthRevision: 0, lastNack: null, replica: 'a' };
}

function setVersion(ids: string[], version: number): void {
  for (const n of held) if (ids.includes(n.id)) n.configVersion = version;
}

/** A report of `requests` requests with `errors` 5xx, all in one latency bucket. */
function report(node: string, version: number, requests: number, errors: number, bucket = 0): void {
  const counts = [0, 0, 0, 0];
  counts[bucket] = requests;
  const r: TrafficReport = {
    windowMs: 1000,
    configVersion: version,
    historyId: historyId(),
    latencyBoundsMs: BOUNDS,
    routes: [{ pool: '', name: 'site', requests, errors, meanMs: 1, latencyCounts: counts }],
    pools: [],
    backends: [],
  };
  traffic.record(node, {}, r);
}

let history = '';
const historyId = () => history;

async function begin(steps: RolloutStep[], abortOn: Partial<AbortOn> = {}): Promise<RolloutRecord> {
  const pointer = await configs.pointer();
  const at = new Date(now).toISOString();
  const record: RolloutRecord = {
    id: 'r-1',
    version: 2,
    baseline: 1,
    historyId: pointer.historyId,
    steps,
    abortOn: { nack: true, minRequests: 10, ...abortOn },
    state: 'running',
    step: 1,
    canaries: [],
    stepStartedAt: at,
    bakeStartedAt: null,
    reason: null,
    rollbackVersion: null,
    actor: 't',
    createdAt: at,
    updatedAt: at,
  };
  expect(await rollouts.create(record, pointer)).toBe('created');
  return record;
}

const state = async () => (await rollouts.get('r-1'))!.record;

beforeEach(async () => {
  configs = new MemoryConfigStore();
  writer = new ConfigWriter(configs);
  await writer.write(write, () => ({ pools: { web: { backends: [] } }, routes: {} }));
  await writer.write({ ...write, stage: true }, () => ({ pools: { web: { backends: [] }, more: { backends: [] } }, routes: {} }));
  history = (await configs.pointer()).historyId;
  rollouts = new MemoryRolloutStore(() => configs.pointer());
  traffic = new TrafficStats(() => now);
  held = ['dp-c', 'dp-a', 'dp-b', 'dp-d'].map((id) => node(id, 1));
  now = Date.parse('2026-06-01T00:00:00Z');
  conductor = new RolloutConductor({
    store: rollouts,
    configs,
    writer,
    nodes: new MemoryNodeStore(),
    heldNodes: () => held,
    traffic,
    leadership: leader,
    watched: () => ({}) as RolloutRecord,
    replica: 'a',
    logger,
    now: () => now,
  });
});

describe('the rollout driver', () => {
  it('adds nodes step by step, waits for their ACKs and bake, and makes the version current at the end', async () => {
    await begin([
      { nodes: 1, bakeSeconds: 10 },
      { percent: 50, bakeSeconds: 10 },
      { percent: 100, bakeSeconds: 0 },
    ]);
    await conductor.tick();
    expect((await state()).canaries).toEqual(['dp-a']);
    // Not ACKed yet: no bake.
    await conductor.tick();
    expect((await state()).bakeStartedAt).toBeNull();
    setVersion(['dp-a'], 2);
    await conductor.tick();
    expect((await state()).bakeStartedAt).not.toBeNull();
    now += 9_000;
    await conductor.tick();
    expect((await state()).step).toBe(1);
    now += 1_000;
    await conductor.tick();
    expect((await state()).step).toBe(2);
    await conductor.tick();
    expect((await state()).canaries).toEqual(['dp-a', 'dp-b']);
    setVersion(['dp-b'], 2);
    await conductor.tick();
    now += 10_000;
    await conductor.tick();
    await conductor.tick();
    expect((await state()).canaries).toEqual(['dp-a', 'dp-b', 'dp-c', 'dp-d']);
    setVersion(['dp-c', 'dp-d'], 2);
    await conductor.tick();
    expect((await configs.pointer()).version).toBe(1);
    await conductor.tick();
    expect(await state()).toMatchObject({ state: 'done', step: 3 });
    expect((await configs.pointer()).version).toBe(2);
    expect(await rollouts.active()).toBeUndefined();
  });

  it('aborts on an error rate above the baseline by more than the points, and commits the baseline above the staged version', async () => {
    await begin(
      [
        { nodes: 1, bakeSeconds: 60 },
        { percent: 100, bakeSeconds: 0 },
      ],
      { errorRatePoints: 5 },
    );
    await conductor.tick();
    setVersion(['dp-a'], 2);
    await conductor.tick();
    // 4 points above the baseline: within the bound.
    report('dp-a', 2, 100, 5);
    report('dp-b', 1, 100, 1);
    await conductor.tick();
    expect((await state()).state).toBe('running');
    // Too few requests to judge.
    report('dp-a', 2, 5, 5);
    await conductor.tick();
    expect((await state()).state).toBe('running');
    report('dp-a', 2, 100, 20);
    await conductor.tick();
    const aborted = await state();
    expect(aborted).toMatchObject({ state: 'aborted', rollbackVersion: 3 });
    expect(aborted.reason).toBe("error rate 20.00 % on the rollout's nodes against 1.00 % on the others (abortOn.errorRatePoints 5)");
    const rollback = await configs.getVersion(3);
    expect(rollback).toMatchObject({ rollbackOf: 1, parent: 1 });
    expect(rollback?.config).toEqual((await configs.getVersion(1))?.config);
    expect((await configs.pointer()).version).toBe(3);
  });

  it('aborts on a p99 above the bound, and on a NACK of the version by a node of the rollout', async () => {
    await begin([{ nodes: 1, bakeSeconds: 60 }], { p99Ms: 50 });
    await conductor.tick();
    setVersion(['dp-a'], 2);
    await conductor.tick();
    report('dp-a', 2, 100, 0, 3);
    await conductor.tick();
    expect((await state()).reason).toBe("p99 100.0 ms on the rollout's nodes (abortOn.p99Ms 50)");

    // Another rollout, refused by its node.
    await writer.write({ ...write, stage: true }, () => ({ pools: { other: { backends: [] } }, routes: {} }));
    const pointer = await configs.pointer();
    const record = {
      ...(await state()),
      id: 'r-2',
      version: 4,
      baseline: 3,
      state: 'running' as const,
      step: 1,
      canaries: [],
      reason: null,
      rollbackVersion: null,
    };
    expect(await rollouts.create(record, pointer)).toBe('created');
    await conductor.tick();
    held.find((n) => n.id === 'dp-a')!.lastNack = { version: 4, error: 'DP_ERR_LISTENER_BIND: no', at: new Date(now).toISOString() };
    await conductor.tick();
    const refused = (await rollouts.get('r-2'))!.record;
    expect(refused).toMatchObject({ state: 'aborted', reason: 'node dp-a refused version 4: DP_ERR_LISTENER_BIND: no', rollbackVersion: 5 });
  });

  it("aborts when the step's nodes have not all run the version within ackTimeoutSeconds, and a resumed rollout gets the time afresh", async () => {
    await begin([{ nodes: 2, bakeSeconds: 60 }], { nack: false, ackTimeoutSeconds: 30 });
    await conductor.tick();
    expect((await state()).canaries).toEqual(['dp-a', 'dp-b']);
    // dp-a runs it; dp-b never answers (or NACKs, with abortOn.nack off).
    setVersion(['dp-a'], 2);
    now += 30_000;
    await conductor.tick();
    expect((await state()).state).toBe('running');
    // A pause and a resume start the step's time again.
    const paused = await rollouts.get('r-1');
    expect(await rollouts.update({ ...paused!.record, state: 'paused' }, paused!.revision)).toBe(true);
    now += 60_000;
    await conductor.tick();
    const resumed = await rollouts.get('r-1');
    expect(await rollouts.update({ ...resumed!.record, state: 'running', stepStartedAt: new Date(now).toISOString() }, resumed!.revision)).toBe(true);
    now += 29_000;
    await conductor.tick();
    expect((await state()).state).toBe('running');
    now += 2_000;
    await conductor.tick();
    expect(await state()).toMatchObject({
      state: 'aborted',
      reason: "1 of the step's 2 nodes ran version 2 within 30 s (abortOn.ackTimeoutSeconds)",
      rollbackVersion: 3,
    });
  });

  it('aborts when a plain write moves the current version, without a version of its own', async () => {
    await begin([{ nodes: 1, bakeSeconds: 60 }]);
    await conductor.tick();
    await writer.write(write, () => ({ pools: { web: { backends: [] }, x: { backends: [] } }, routes: {} }));
    await conductor.tick();
    expect(await state()).toMatchObject({ state: 'aborted', reason: 'the current version moved to 3 while the rollout ran', rollbackVersion: 3 });
  });
});
