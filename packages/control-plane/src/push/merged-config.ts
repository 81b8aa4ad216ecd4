/**
 * What the data planes run, as push views (push-view.ts): the current config version with the
 * self-registered (TTL) backends merged into their pools. Registrations are not config, so merging
 * them keeps the version and bumps `generation` instead; the streams push again when the view
 * changes either way.
 */
import type { Logger } from '@lb/shared';
import type { StoredConfig } from '../store/config-store.js';
import { CoalescedRefresh } from '../store/coalesced-refresh.js';
import type { RegistrationStore, Registration } from '../store/registration-store.js';
import type { ConfigSource } from './config-feed.js';
import { buildPushView, type PushView } from './push-view.js';
import { Listeners } from './listeners.js';

/** Views a node may still run after a reconnect, remembered so it can get a delta from one of them. */
const RECENT_VIEWS = 8;

/** What the stream server needs: the newest view, and recent ones to find a reconnecting node's base. */
export interface PushViewSource extends ConfigSource<PushView> {
  /** A recent view with exactly this history, version and digest; undefined when none is remembered. */
  find(historyId: string, version: number, digest: string): PushView | undefined;
}

export interface MergedConfigSourceOptions {
  config: ConfigSource<StoredConfig>;
  registrations: RegistrationStore;
  logger: Logger;
  retryDelayMs?: number;
}

export class MergedConfigSource implements PushViewSource {
  private registrations: Registration[] = [];
  private registrationsJson = '[]';
  private generation = 0;
  /** The registrations were read once: before that a pool's registered backends are unknown, not absent. */
  private listed = false;
  private current: PushView | undefined;
  private recent: PushView[] = [];
  private readonly listeners: Listeners<PushView>;
  private offs: Array<() => void> = [];
  /** A registration change seen while a list runs lists once more after it. */
  private readonly lists = new CoalescedRefresh(
    () => this.listOnce(),
    () => this.stopped,
  );
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: MergedConfigSourceOptions) {
    this.listeners = new Listeners(options.logger, 'config listener failed');
  }

  start(): void {
    this.offs.push(this.options.config.subscribe(() => this.publish()));
    this.offs.push(this.options.registrations.watch(() => void this.lists.request()));
    this.publish();
  }

  stop(): void {
    this.stopped = true;
    for (const off of this.offs) off();
    clearTimeout(this.retryTimer);
    this.listeners.clear();
  }

  latest(): PushView | undefined {
    return this.current;
  }

  find(historyId: string, version: number, digest: string): PushView | undefined {
    return this.recent.find((v) => v.historyId === historyId && v.version === version && v.digest === digest);
  }

  subscribe(listener: (view: PushView) => void): () => void {
    return this.listeners.add(listener);
  }

  /** One list of the registrations, published when it changed; false when it failed (a retry is scheduled). */
  private async listOnce(): Promise<boolean> {
    try {
      const list = await this.options.registrations.list();
      const json = JSON.stringify(list.map((r) => [r.pool, r.backend]));
      const first = !this.listed;
      this.listed = true;
      if (json !== this.registrationsJson) {
        this.registrations = list;
        this.registrationsJson = json;
        this.generation++;
        this.publish();
      } else if (first) this.publish();
      return true;
    } catch (err) {
      this.options.logger.warn({ err: (err as Error).message }, 'cannot read registrations; retrying');
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => void this.lists.request(), this.options.retryDelayMs ?? 1_000);
      return false;
    }
  }

  private publish(): void {
    // Nothing before the first list: a snapshot without the registered backends would drop them
    // from every data plane, and the health leader would delete their health.
    if (this.stopped || !this.listed) return;
    const base = this.options.config.latest();
    if (base === undefined) return;
    const before = this.current;
    const next = buildPushView(base, this.registrations, this.generation);
    if (before && before.historyId === next.historyId && before.version === next.version && before.digest === next.digest) return;
    this.current = next;
    this.recent = [next, ...this.recent.slice(0, RECENT_VIEWS - 1)];
    this.listeners.notify(next);
  }
}
