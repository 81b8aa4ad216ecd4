/**
 * Every replica's view of health, kept from the store's watch and handed to the streams as a
 * HealthSource: a full state after each Hello and, afterwards, deltas naming only the backends
 * whose status changed. The revision is etcd's: the mod revision of the newest change applied
 * (or the revision a re-list was read at), so it only grows. Probe bookkeeping that does not move a
 * status (lastProbe, consecutive) is stored but never pushed.
 */
import type { BackendHealth, Logger } from '@lb/shared';
import type { HealthDelta, HealthSource, HealthState } from '../push/health-source.js';
import { Listeners } from '../push/listeners.js';
import { CoalescedRefresh } from '../store/coalesced-refresh.js';
import type { HealthRecord } from './health-record.js';
import type { HealthEvent, HealthStore } from './health-store.js';

export interface HealthFeedOptions {
  store: HealthStore;
  logger: Logger;
  /** Delay before retrying a failed list (etcd down). Default 1000. */
  retryDelayMs?: number;
  /** Re-list this often even without watch trouble (a missed event heals). Default 30000. */
  resyncIntervalMs?: number;
}

const key = (pool: string, backend: string) => `${pool}\u0000${backend}`;

function toWire(r: HealthRecord): BackendHealth {
  return { pool: r.pool, backendId: r.backend, status: r.status, sinceUnixMs: r.since === null ? 0 : Date.parse(r.since) };
}

export class HealthFeed implements HealthSource {
  private revision = 0;
  /** The store was listed once: until then there is no health to push (HealthSource.full). */
  private listed = false;
  private readonly records = new Map<string, HealthRecord>();
  private readonly listeners: Listeners<HealthDelta>;
  private stopWatch: (() => void) | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** A resync asked for while a list runs (a watch reconnect) lists once more after it. */
  private readonly lists = new CoalescedRefresh(
    () => this.listOnce(),
    () => this.stopped,
  );

  constructor(private readonly options: HealthFeedOptions) {
    this.listeners = new Listeners(options.logger, 'health listener failed');
  }

  start(): void {
    void this.resync();
    this.resyncTimer = setInterval(() => void this.resync(), this.options.resyncIntervalMs ?? 30_000);
    this.resyncTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    this.stopWatch?.();
    clearTimeout(this.retryTimer);
    clearInterval(this.resyncTimer);
    this.listeners.clear();
  }

  full(): HealthState | undefined {
    if (!this.listed) return undefined;
    const backends: BackendHealth[] = [];
    for (const r of this.records.values()) if (r.status !== 'unknown') backends.push(toWire(r));
    return { revision: this.revision, backends };
  }

  subscribe(listener: (delta: HealthDelta) => void): () => void {
    return this.listeners.add(listener);
  }

  /**
   * Lists the store and emits the difference as one delta; (re)starts the watch after the first list.
   * Asked for while a list runs, it lists once more after that one (which may have been read before
   * the change the caller knows of); the promise of the running call covers that re-list.
   */
  async resync(): Promise<void> {
    if (this.stopped) return;
    // A failed list is retried by its timer, which also serves a request made meanwhile.
    await this.lists.request();
  }

  /** One list and its delta; false when the store could not be read (a retry is scheduled). */
  private async listOnce(): Promise<boolean> {
    try {
      let listed = await this.options.store.list();
      // The watch may have delivered changes newer than what the list read (its answer was on the
      // way meanwhile): applying it would turn those back, so read again while it is older. A store
      // that stays older (etcd restored from a backup) is taken as it is after a few reads.
      for (let tries = 0; listed.revision < this.revision && !this.stopped && tries < 3; tries++) {
        listed = await this.options.store.list();
      }
      if (listed.revision < this.revision)
        this.options.logger.warn(
          { store: listed.revision, seen: this.revision },
          'health store revision is older than changes already seen; taking the store as it is',
        );
      const { revision, records } = listed;
      if (this.stopped) return true;
      const seen = new Set<string>();
      const changed: BackendHealth[] = [];
      for (const r of records) {
        const k = key(r.pool, r.backend);
        seen.add(k);
        if (this.statusChanged(this.records.get(k), r)) changed.push(toWire(r));
        this.records.set(k, r);
      }
      for (const [k, r] of this.records) {
        if (seen.has(k)) continue;
        this.records.delete(k);
        if (r.status !== 'unknown') changed.push({ pool: r.pool, backendId: r.backend, status: 'unknown', sinceUnixMs: 0 });
      }
      // The first list always reaches the subscribers: streams opened before it wait for it.
      const first = !this.listed;
      this.listed = true;
      this.emit(Math.max(this.revision, revision), changed, first);
      if (this.stopWatch === undefined) {
        this.stopWatch = this.options.store.watch(revision, {
          onEvent: (event) => this.onEvent(event),
          onReconnect: () => void this.resync(),
        });
      }
      return true;
    } catch (err) {
      this.options.logger.warn({ err: (err as Error).message }, 'cannot read health; retrying');
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => void this.resync(), this.options.retryDelayMs ?? 1_000);
      return false;
    }
  }

  private onEvent(event: HealthEvent): void {
    if (this.stopped) return;
    if (event.type === 'put') {
      const k = key(event.record.pool, event.record.backend);
      const changed = this.statusChanged(this.records.get(k), event.record);
      this.records.set(k, event.record);
      if (changed) this.emit(event.revision, [toWire(event.record)]);
    } else {
      const k = key(event.pool, event.backend);
      const before = this.records.get(k);
      this.records.delete(k);
      if (before !== undefined && before.status !== 'unknown')
        this.emit(event.revision, [{ pool: event.pool, backendId: event.backend, status: 'unknown', sinceUnixMs: 0 }]);
    }
  }

  private statusChanged(before: HealthRecord | undefined, after: HealthRecord): boolean {
    if (before === undefined) return after.status !== 'unknown';
    return before.status !== after.status || before.since !== after.since;
  }

  /** Moves the revision forward and tells the subscribers, unless nothing changed (and this is not `always`). */
  private emit(revision: number, backends: BackendHealth[], always = false): void {
    this.revision = Math.max(this.revision, revision);
    if (always || backends.length > 0) this.listeners.notify({ revision: this.revision, full: false, backends });
  }
}
