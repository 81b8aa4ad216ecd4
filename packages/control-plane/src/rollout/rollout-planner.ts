/**
 * Which view each node gets while a rollout runs: the rollout's nodes (its canaries) the staged
 * version, every other node the current one. Every replica follows the active rollout record in
 * etcd and answers its own streams from it; only the leader changes the record
 * (rollout-conductor.ts). Outside a rollout, and for nodes not in it, it answers undefined: the
 * stream pushes the current version, as without rollouts.
 */
import type { Logger } from '@lb/shared';
import type { PushViewSource } from '../push/merged-config.js';
import type { PushView } from '../push/push-view.js';
import { CoalescedRefresh } from '../store/coalesced-refresh.js';
import { isLive, type RolloutRecord } from './rollout-model.js';
import type { RolloutStore } from './rollout-store.js';
import type { StagedConfigSource } from './staged-config.js';
import { Listeners } from '../push/listeners.js';

/** What a node stream asks (node-stream.ts). */
export interface NodeViewPlanner {
  /** The view `node` must run instead of the current one; undefined: the current one. */
  viewFor(node: string): PushView | undefined;
  /** A staged view a reconnecting node may run (it says so in Hello). */
  find(historyId: string, version: number, digest: string): PushView | undefined;
  /** Called when what some node should run may have changed. */
  subscribe(listener: () => void): () => void;
}

export interface RolloutPlannerOptions {
  store: RolloutStore;
  staged: StagedConfigSource;
  /** Push views of the staged version (the staged source merged and with its key material). */
  views: PushViewSource;
  logger: Logger;
}

export class RolloutPlanner implements NodeViewPlanner {
  private record: RolloutRecord | undefined;
  private canaries = new Set<string>();
  private readonly listeners: Listeners<void>;
  private readonly offs: Array<() => void> = [];
  private stopped = false;
  private readonly reads = new CoalescedRefresh(
    async () => {
      await this.readOnce();
      return true;
    },
    () => this.stopped,
  );

  constructor(private readonly options: RolloutPlannerOptions) {
    this.listeners = new Listeners(options.logger, 'rollout listener failed');
  }

  start(): void {
    this.offs.push(this.options.store.watch(() => void this.refresh()));
    this.offs.push(this.options.views.subscribe(() => this.notify()));
  }

  stop(): void {
    this.stopped = true;
    for (const off of this.offs) off();
    this.listeners.clear();
  }

  /** The active rollout as this replica last read it. */
  current(): RolloutRecord | undefined {
    return this.record;
  }

  viewFor(node: string): PushView | undefined {
    const record = this.record;
    if (record === undefined || !isLive(record.state) || !this.canaries.has(node)) return undefined;
    const view = this.options.views.latest();
    return view !== undefined && view.version === record.version && view.historyId === record.historyId ? view : undefined;
  }

  find(historyId: string, version: number, digest: string): PushView | undefined {
    return this.options.views.find(historyId, version, digest);
  }

  subscribe(listener: () => void): () => void {
    return this.listeners.add(listener);
  }

  /** Re-reads the active rollout; concurrent calls fold into one more read. */
  refresh(): Promise<void> {
    return this.reads.request();
  }

  private async readOnce(): Promise<void> {
    let record: RolloutRecord | undefined;
    try {
      record = (await this.options.store.active())?.record;
    } catch (err) {
      this.options.logger.warn({ err: (err as Error).message }, 'cannot read the active rollout; keeping what was read before');
      return;
    }
    const before = this.record;
    this.record = record;
    this.canaries = new Set(record !== undefined && isLive(record.state) ? record.canaries : []);
    if (record !== undefined && isLive(record.state)) await this.options.staged.load(record.version, record.historyId);
    if (JSON.stringify(before) !== JSON.stringify(record)) this.notify();
  }

  private notify(): void {
    this.listeners.notify(undefined);
  }
}
