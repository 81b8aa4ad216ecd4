/**
 * Drives the active rollout, step by step, from the state in etcd, so that a restarted or a new
 * leader carries on where the last one stopped:
 *
 * - every replica, each tick, publishes the traffic of the nodes it holds (their latest reports,
 *   split into the rollout's nodes running the staged version and the others running the
 *   baseline) — bounded: one small value per replica, only while a rollout runs;
 * - the leader (an etcd election of its own) adds the step's nodes, waits until they all ACK the
 *   version (within `abortOn.ackTimeoutSeconds`, or it aborts), then bakes: a NACK, an error rate
 *   above the baseline's by more than `abortOn.errorRatePoints`, or a p99 above `abortOn.p99Ms`
 *   aborts; a bake that passes moves to the next step, and the last step makes the version current
 *   for every node;
 * - an abort commits a new version whose content is the baseline's (versions never go back, so
 *   the rollout's nodes move forward to it) and records why.
 */
import type { Logger } from '@lb/shared';
import type { Leadership } from '../health/leader-election.js';
import type { NodeRecord, NodeStore } from '../store/node-store.js';
import type { ConfigStore } from '../store/config-store.js';
import { quantileMs } from '../stats/latency-quantile.js';
import type { TrafficStats } from '../stats/traffic-stats.js';
import type { ConfigWriter } from '../versioning/config-writer.js';
import { DEFAULT_ACK_TIMEOUT_SECONDS, nodesFor, type RolloutRecord } from './rollout-model.js';
import type { GroupTraffic, ReplicaTraffic, Revised, RolloutStore } from './rollout-store.js';

export interface RolloutConductorOptions {
  store: RolloutStore;
  configs: ConfigStore;
  writer: ConfigWriter;
  nodes: NodeStore;
  /** This replica's nodes as they are now (NodeRegistry.connected). */
  heldNodes: () => NodeRecord[];
  traffic: TrafficStats;
  leadership: Leadership;
  /** The active rollout as this replica's watch last saw it (RolloutPlanner.current): no etcd read per tick while none is. */
  watched: () => RolloutRecord | undefined;
  replica: string;
  logger: Logger;
  /** How often to look at the rollout. Default 500. */
  tickMs?: number;
  now?: () => number;
}

/** Reports (and replica summaries) older than this are not judged: the node or replica went quiet. */
const FRESH_MS = 15_000;

function emptyGroup(): GroupTraffic {
  return { requests: 0, errors: 0, latencyCounts: [], latencyBoundsMs: [] };
}

/** Adds `requests`, `errors` and latency `counts` into `into` (counts only when the buckets agree). */
function addInto(into: GroupTraffic, requests: number, errors: number, counts: readonly number[], bounds: readonly number[]): void {
  into.requests += requests;
  into.errors += errors;
  if (counts.length === 0) return;
  if (into.latencyCounts.length === 0) {
    into.latencyCounts = new Array<number>(counts.length).fill(0);
    into.latencyBoundsMs = [...bounds];
  }
  if (counts.length !== into.latencyCounts.length) return;
  for (let i = 0; i < counts.length; i++) into.latencyCounts[i]! += counts[i]!;
}

function errorRate(g: GroupTraffic): number {
  return g.requests > 0 ? (g.errors * 100) / g.requests : 0;
}

export class RolloutConductor {
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private readonly now: () => number;
  /** The baseline's last error rate judged over enough requests, per rollout: what a 100 % step compares with. */
  private readonly baselineRate = new Map<string, number>();

  constructor(private readonly options: RolloutConductorOptions) {
    this.now = options.now ?? Date.now;
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.options.tickMs ?? 500);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One look at the active rollout; overlapping ticks are skipped. */
  async tick(): Promise<void> {
    if (this.busy || this.options.watched() === undefined) return;
    this.busy = true;
    try {
      const active = await this.options.store.active();
      if (active === undefined) return;
      if (active.record.state === 'running') await this.publishTraffic(active.record);
      if (this.options.leadership.isLeader) await this.drive(active);
    } catch (err) {
      this.options.logger.warn({ err: (err as Error).message }, 'rollout step failed; trying again');
    } finally {
      this.busy = false;
    }
  }

  /** This replica's nodes' latest traffic, as the rollout's nodes (on its version) and the others (on the baseline). */
  private async publishTraffic(record: RolloutRecord): Promise<void> {
    const canaries = new Set(record.canaries);
    const summary: ReplicaTraffic = { replica: this.options.replica, at: this.now(), canary: emptyGroup(), baseline: emptyGroup() };
    for (const [node, { report, receivedAt }] of this.options.traffic.reports()) {
      if (this.now() - receivedAt > FRESH_MS || report.historyId !== record.historyId) continue;
      const group =
        canaries.has(node) && report.configVersion === record.version
          ? summary.canary
          : !canaries.has(node) && report.configVersion === record.baseline
            ? summary.baseline
            : undefined;
      if (group === undefined) continue;
      for (const r of report.routes) addInto(group, r.requests, r.errors, r.latencyCounts, report.latencyBoundsMs);
    }
    await this.options.store.publishTraffic(record.id, summary);
  }

  private async drive({ record, revision }: Revised): Promise<void> {
    if (record.state === 'aborted') return this.rollBack(record, revision);
    if (record.state !== 'running') return;
    const pointer = await this.options.configs.pointer();
    if (pointer.historyId !== record.historyId || pointer.version !== record.baseline) {
      return this.abort(record, revision, `the current version moved to ${pointer.version} while the rollout ran`);
    }
    const connected = (await this.options.nodes.known(this.options.heldNodes())).filter((n) => n.status === 'connected');
    const canaries = new Set(record.canaries);
    if (record.abortOn.nack) {
      const created = Date.parse(record.createdAt);
      const refused = connected.find((n) => canaries.has(n.id) && n.lastNack?.version === record.version && Date.parse(n.lastNack.at) >= created);
      if (refused?.lastNack) return this.abort(record, revision, `node ${refused.id} refused version ${record.version}: ${refused.lastNack.error}`);
    }
    const step = record.steps[record.step - 1]!;
    const wanted = nodesFor(step, connected.length);
    if (connected.length > 0 && canaries.size < wanted) {
      // Adds the nodes in id order: the same choice on any leader.
      const added = connected
        .map((n) => n.id)
        .filter((id) => !canaries.has(id))
        .sort()
        .slice(0, wanted - canaries.size);
      this.options.logger.info({ rollout: record.id, step: record.step, nodes: added }, 'rollout: nodes get the new version');
      return this.save({ ...record, canaries: [...record.canaries, ...added], stepStartedAt: this.iso(), bakeStartedAt: null }, revision);
    }
    const inStep = connected.filter((n) => canaries.has(n.id));
    if (inStep.length === 0 || inStep.some((n) => n.configVersion !== record.version)) {
      // Until the bake starts, the step's nodes have ackTimeoutSeconds to run the version (a node
      // that went quiet, or NACKs with abortOn.nack off, must not hold the rollout for ever).
      const seconds = record.abortOn.ackTimeoutSeconds ?? DEFAULT_ACK_TIMEOUT_SECONDS;
      if (record.bakeStartedAt === null && this.now() - Date.parse(record.stepStartedAt) > seconds * 1000) {
        const running = inStep.filter((n) => n.configVersion === record.version).length;
        return this.abort(
          record,
          revision,
          `${running} of the step's ${canaries.size} nodes ran version ${record.version} within ${seconds} s (abortOn.ackTimeoutSeconds)`,
        );
      }
      return;
    }
    if (record.bakeStartedAt === null) return this.save({ ...record, bakeStartedAt: this.iso() }, revision);
    const breach = await this.judge(record);
    if (breach !== undefined) return this.abort(record, revision, breach);
    if (this.now() - Date.parse(record.bakeStartedAt) < step.bakeSeconds * 1000) return;
    if (record.step < record.steps.length) {
      this.options.logger.info({ rollout: record.id, step: record.step + 1 }, 'rollout: next step');
      return this.save({ ...record, step: record.step + 1, stepStartedAt: this.iso(), bakeStartedAt: null }, revision);
    }
    // The last step baked: the version becomes current, so every node runs it, then the record says done.
    if (!(await this.options.configs.promote(record.version, pointer))) return;
    this.options.logger.info({ rollout: record.id, version: record.version }, 'rollout done: the version is current');
    this.baselineRate.delete(record.id);
    await this.save({ ...record, state: 'done' }, revision);
  }

  /** Why the rollout's nodes' traffic breaks `abortOn`, or undefined. */
  private async judge(record: RolloutRecord): Promise<string | undefined> {
    const canary = emptyGroup();
    const baseline = emptyGroup();
    for (const r of await this.options.store.traffic(record.id)) {
      if (this.now() - r.at > FRESH_MS) continue;
      addInto(canary, r.canary.requests, r.canary.errors, r.canary.latencyCounts, r.canary.latencyBoundsMs);
      addInto(baseline, r.baseline.requests, r.baseline.errors, r.baseline.latencyCounts, r.baseline.latencyBoundsMs);
    }
    const { abortOn } = record;
    if (baseline.requests >= abortOn.minRequests) this.baselineRate.set(record.id, errorRate(baseline));
    if (canary.requests < abortOn.minRequests) return undefined;
    if (abortOn.errorRatePoints !== undefined) {
      // With every node in the rollout there is no baseline left: its last rate judged stands in (0 if none was).
      const base = this.baselineRate.get(record.id) ?? 0;
      const rate = errorRate(canary);
      if (rate - base > abortOn.errorRatePoints) {
        return `error rate ${rate.toFixed(2)} % on the rollout's nodes against ${base.toFixed(2)} % on the others (abortOn.errorRatePoints ${abortOn.errorRatePoints})`;
      }
    }
    if (abortOn.p99Ms !== undefined) {
      const p99 = quantileMs(canary.latencyCounts, canary.latencyBoundsMs, 0.99);
      if (p99 > abortOn.p99Ms) return `p99 ${p99.toFixed(1)} ms on the rollout's nodes (abortOn.p99Ms ${abortOn.p99Ms})`;
    }
    return undefined;
  }

  private async abort(record: RolloutRecord, revision: string, reason: string): Promise<void> {
    this.options.logger.warn({ rollout: record.id, version: record.version, reason }, 'rollout aborted: every node goes back');
    const aborted: RolloutRecord = { ...record, state: 'aborted', reason, updatedAt: this.iso() };
    if (!(await this.options.store.update(aborted, revision))) return;
    const after = await this.options.store.get(record.id);
    if (after !== undefined) await this.rollBack(after.record, after.revision);
  }

  /**
   * Takes every node back: a version above the rollout's with the baseline's content (nodes never
   * apply a lower version). When a later version is already current, that one does it.
   */
  private async rollBack(record: RolloutRecord, revision: string): Promise<void> {
    if (record.rollbackVersion !== null) return;
    const pointer = await this.options.configs.pointer();
    let rollbackVersion = pointer.version;
    if (pointer.historyId === record.historyId && pointer.version < record.version) {
      const baseline = await this.options.configs.getVersion(record.baseline);
      if (baseline === undefined) throw new Error(`the baseline version ${record.baseline} is gone`);
      const result = await this.options.writer.write(
        {
          dryRun: false,
          actor: record.actor,
          source: `rollout ${record.id}`,
          requestId: record.id,
          message: `rollout ${record.id} of version ${record.version} aborted: ${record.reason ?? 'no reason recorded'}`,
          rollbackOf: record.baseline,
          evenIfUnchanged: true,
        },
        () => baseline.config,
      );
      rollbackVersion = result.version;
    }
    this.baselineRate.delete(record.id);
    this.options.logger.info({ rollout: record.id, rollbackVersion }, 'rollout rolled back');
    await this.options.store.update({ ...record, rollbackVersion, updatedAt: this.iso() }, revision);
  }

  private async save(next: RolloutRecord, revision: string): Promise<void> {
    await this.options.store.update({ ...next, updatedAt: this.iso() }, revision);
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }
}
