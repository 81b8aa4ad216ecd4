/**
 * TokenStore on etcd: `<prefix>/tokens/<name>` → TokenRecord JSON. The in-memory copy is reloaded
 * whole after every watch event (tokens are few) and every few seconds, so a missed event heals.
 * A reload older than something this replica already applied is dropped: a revoked token can never
 * come back from a slow read.
 */
import type { Etcd3 } from 'etcd3';
import type { Logger } from '@lb/shared';
import { CoalescedRefresh } from '../store/coalesced-refresh.js';
import { guarded } from '../store/etcd-client.js';
import { EtcdKeys } from '../store/keys.js';
import type { TokenRecord, TokenStore } from './token-store.js';

export interface EtcdTokenStoreOptions {
  client: Etcd3;
  prefix: string;
  logger: Logger;
  deadlineMs?: number;
  /** Full reload period, the safety net under the watch. */
  resyncIntervalMs?: number;
  /** Delay before reloading again after a failed reload. */
  retryDelayMs?: number;
}

export class EtcdTokenStore implements TokenStore {
  private readonly client: Etcd3;
  private readonly keys: EtcdKeys;
  private readonly logger: Logger;
  private readonly deadlineMs: number;
  private records = new Map<string, TokenRecord>();
  /** The etcd revision the copy reflects; a reload read at an older revision is dropped. */
  private revision = 0n;
  private loaded = false;
  private readonly loadedWaiters: Array<() => void> = [];
  private readonly refresh: CoalescedRefresh;
  private stopped = false;
  private stopWatch: (() => void) | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly retryDelayMs: number;

  constructor(private readonly options: EtcdTokenStoreOptions) {
    this.client = options.client;
    this.keys = new EtcdKeys(options.prefix);
    this.logger = options.logger;
    this.deadlineMs = options.deadlineMs ?? 4_000;
    this.retryDelayMs = options.retryDelayMs ?? 1_000;
    this.refresh = new CoalescedRefresh(
      () => this.reload(),
      () => this.stopped,
    );
  }

  /** Starts watching and loads the first copy (retrying while etcd is down). */
  start(): void {
    const watcher = this.client.watch().prefix(this.keys.tokensPrefix).watcher();
    const changed = () => void this.refresh.request();
    watcher.on('connected', changed);
    watcher.on('put', changed);
    watcher.on('delete', changed);
    watcher.on('error', (err) => this.logger.warn({ err: err.message }, 'token watch error'));
    this.stopWatch = () => void watcher.cancel().catch(() => undefined);
    this.resyncTimer = setInterval(changed, this.options.resyncIntervalMs ?? 5_000);
    this.resyncTimer.unref();
    changed();
  }

  private async reload(): Promise<boolean> {
    try {
      const found = await guarded('loading tokens', this.deadlineMs, () => this.client.getAll().prefix(this.keys.tokensPrefix).exec());
      const revision = BigInt(found.header.revision);
      if (revision < this.revision) return true;
      const records = new Map<string, TokenRecord>();
      for (const kv of found.kvs) {
        const record = JSON.parse(kv.value.toString()) as TokenRecord;
        records.set(record.name, record);
      }
      this.records = records;
      this.revision = revision;
      if (!this.loaded) {
        this.loaded = true;
        for (const wake of this.loadedWaiters.splice(0)) wake();
      }
      return true;
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'cannot load tokens; retrying');
      if (!this.stopped) {
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => void this.refresh.request(), this.retryDelayMs);
        this.retryTimer.unref();
      }
      return false;
    }
  }

  ready(): Promise<void> {
    if (this.loaded) return Promise.resolve();
    return new Promise((resolve) => this.loadedWaiters.push(resolve));
  }

  get(name: string): TokenRecord | undefined {
    return this.records.get(name);
  }

  list(): Promise<TokenRecord[]> {
    return guarded('listing tokens', this.deadlineMs, async () => {
      const found = await this.client.getAll().prefix(this.keys.tokensPrefix).strings();
      return Object.values(found)
        .map((value) => JSON.parse(value) as TokenRecord)
        .sort((a, b) => a.name.localeCompare(b.name));
    });
  }

  create(record: TokenRecord): Promise<boolean> {
    return guarded(`creating token ${record.name}`, this.deadlineMs, async () => {
      const key = this.keys.token(record.name);
      const result = await this.client
        .if(key, 'Create', '==', 0)
        .then(this.client.put(key).value(JSON.stringify(record)))
        .commit();
      if (!result.succeeded) return false;
      // Usable on this replica as soon as the answer is out, without waiting for the watch.
      this.apply(BigInt(result.header.revision), () => this.records.set(record.name, record));
      return true;
    });
  }

  createFirstAdmin(record: TokenRecord): Promise<boolean> {
    return guarded('creating the first admin token', this.deadlineMs, async () => {
      const key = this.keys.token(record.name);
      const result = await this.client
        .if(this.keys.adminBootstrapped, 'Create', '==', 0)
        .and(key, 'Create', '==', 0)
        .then(this.client.put(this.keys.adminBootstrapped).value(record.createdAt), this.client.put(key).value(JSON.stringify(record)))
        .commit();
      if (!result.succeeded) return false;
      this.apply(BigInt(result.header.revision), () => this.records.set(record.name, record));
      return true;
    });
  }

  delete(name: string): Promise<boolean> {
    return guarded(`deleting token ${name}`, this.deadlineMs, async () => {
      const result = await this.client.delete().key(this.keys.token(name)).exec();
      // Gone here before the answer goes out; other replicas drop it on their watch event.
      this.apply(BigInt(result.header.revision), () => this.records.delete(name));
      return Number(result.deleted) > 0;
    });
  }

  /** A local change at `revision`: later reloads must be at least as new to replace it. */
  private apply(revision: bigint, change: () => void): void {
    change();
    if (revision > this.revision) this.revision = revision;
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.stopWatch?.();
    clearInterval(this.resyncTimer);
    clearTimeout(this.retryTimer);
  }
}
