/**
 * What the control plane forgets, so etcd does not grow without end:
 * - config versions beyond the newest `keepVersions` (--keep-versions), except the current one
 *   and any version a known node (connected or disconnected) last acked: a node may still run it
 *   and an operator may want to roll back to it;
 * - stored objects (resources, chunks) no remaining version refers to: after versions were pruned,
 *   at the first run, and every `collectIntervalMs` (objects of writes that failed half-way);
 * - disconnected nodes last seen longer ago than `nodeRetentionMs` (--node-retention-seconds);
 * - audit entries beyond the newest `keepAuditEntries` (--keep-audit-entries).
 * Every replica runs it (after new versions, after a node is forgotten, and periodically); each
 * step is idempotent, so replicas running it at once only repeat each other's work.
 */
import type { Logger } from '@lb/shared';
import type { AuditLog } from '../audit/audit-log.js';
import { CoalescedRefresh } from '../store/coalesced-refresh.js';
import type { ConfigStore } from '../store/config-store.js';
import type { NodeStore } from '../store/node-store.js';

export interface RetentionOptions {
  store: ConfigStore;
  nodes: NodeStore;
  audit: AuditLog;
  logger: Logger;
  /** Newest versions kept; 0 keeps all. */
  keepVersions: number;
  nodeRetentionMs: number;
  keepAuditEntries: number;
  /** Period of the run that happens even when nothing asks for one. */
  intervalMs?: number;
  /**
   * How soon to look again when a version past the cut was kept because a node's record says it
   * runs it: node records are written in batches, so the record may be seconds behind the node,
   * which has likely moved on. Default 5000.
   */
  inUseRecheckMs?: number;
  /** Longest time between two garbage collections of stored objects. Default 10 minutes. */
  collectIntervalMs?: number;
  /**
   * The current version as this replica last read it (the config feed): while it is within
   * `keepVersions` there is nothing to prune, and the store's pointer is not read (an etcd read per
   * new version spared). Lagging is safe: it only prunes later.
   */
  knownVersion?: () => number | undefined;
  now?: () => Date;
}

export interface RetentionReport {
  versions: number;
  /** Stored objects deleted. */
  objects: number;
  nodes: string[];
  auditEntries: number;
}

export class Retention {
  private readonly refresh: CoalescedRefresh;
  private timer: NodeJS.Timeout | undefined;
  private recheck: NodeJS.Timeout | undefined;
  /** The current version a recheck was scheduled for: one per version, so a disconnected node's old version costs one. */
  private recheckedFor = 0;
  private stopped = false;
  private readonly now: () => Date;
  /** When objects were last collected (ms); undefined: never in this process. */
  private collectedAt: number | undefined;

  constructor(private readonly options: RetentionOptions) {
    this.now = options.now ?? (() => new Date());
    this.refresh = new CoalescedRefresh(
      async () => {
        try {
          await this.runOnce();
        } catch (err) {
          // The next request or period tries again; nothing depends on this run.
          this.options.logger.warn({ err: (err as Error).message }, 'retention run failed; retrying later');
        }
        return true;
      },
      () => this.stopped,
    );
  }

  start(): void {
    this.timer = setInterval(() => this.request(), this.options.intervalMs ?? 60_000);
    this.timer.unref();
    this.request();
  }

  /** Runs soon (folded into a run in progress). */
  request(): void {
    if (!this.stopped) void this.refresh.request();
  }

  async runOnce(): Promise<RetentionReport> {
    const { store, nodes, audit, logger } = this.options;
    const forgotten = await nodes.forgetDisconnected(new Date(this.now().getTime() - this.options.nodeRetentionMs));
    let versions = 0;
    const keep = this.options.keepVersions;
    const known = this.options.knownVersion?.();
    // The store's own pointer sets the cut: a feed that has not yet seen an etcd restore could be ahead of it.
    const current = keep > 0 && (known === undefined || known > keep) ? await store.currentVersion() : 0;
    if (keep > 0 && current > keep) {
      const inUse = new Set((await nodes.known()).map((n) => n.configVersion));
      const cut = current - keep + 1;
      versions = await store.pruneVersions(cut, inUse);
      if ([...inUse].some((v) => v > 0 && v < cut)) this.recheckSoon(current);
    }
    let objects = 0;
    const nowMs = this.now().getTime();
    if (versions > 0 || this.collectedAt === undefined || nowMs - this.collectedAt >= (this.options.collectIntervalMs ?? 600_000)) {
      objects = await store.collectGarbage();
      this.collectedAt = nowMs;
    }
    const auditEntries = await audit.prune(this.options.keepAuditEntries);
    if (versions > 0 || objects > 0 || forgotten.length > 0 || auditEntries > 0)
      logger.info({ versions, objects, nodes: forgotten, auditEntries }, 'retention pruned history');
    return { versions, objects, nodes: forgotten, auditEntries };
  }

  private recheckSoon(current: number): void {
    if (this.recheck !== undefined || this.stopped || this.recheckedFor === current) return;
    this.recheckedFor = current;
    this.recheck = setTimeout(() => {
      this.recheck = undefined;
      this.request();
    }, this.options.inUseRecheckMs ?? 5_000);
    this.recheck.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.recheck);
  }
}
