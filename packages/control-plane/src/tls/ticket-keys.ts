/**
 * The TLS session-ticket key every data plane shares, so that a client resumes its session on any
 * node behind an outer L4 balancer (Envoy and HAProxy leave this to a file distributed by hand).
 * It lives in etcd, sealed, and is replaced every --session-ticket-rotation-hours by whichever
 * replica first sees it due (a compare-and-swap on its revision, so replicas never fight); every
 * replica watches it and pushes the new one to its nodes. Node's TLS server holds one key at a
 * time, so a ticket issued before a rotation costs its client one full handshake after it.
 */
import { randomBytes } from 'node:crypto';
import type { Etcd3 } from 'etcd3';
import type { Logger } from '@lb/shared';
import type { SealedValue, SecretBox } from '../secrets/secret-box.js';
import { guarded } from '../store/etcd-client.js';
import { EtcdKeys } from '../store/keys.js';
import { Listeners } from '../push/listeners.js';

/** Node's ticket keys: 16 bytes of key name, 16 of HMAC secret, 16 of AES key. */
export const TICKET_KEY_BYTES = 48;
/** The additional data the ticket key is sealed under. */
const SEAL_ID = 'session-ticket-key';

export interface StoredTicketKey {
  /** ISO 8601. */
  createdAt: string;
  sealed: SealedValue;
}

/** Where the shared key is kept: etcd in production, memory in tests. */
export interface TicketKeyStore {
  /** The stored key and a revision that changes with every write; undefined when there is none. */
  read(): Promise<{ value: StoredTicketKey; revision: string } | undefined>;
  /** Writes `value` only if the stored revision is still `revision` (undefined: only if there is none). */
  replace(value: StoredTicketKey, revision: string | undefined): Promise<boolean>;
  /** Calls `onChange` after changes (and reconnections); returns a function that stops it. */
  watch(onChange: () => void): () => void;
}

/** What the push side reads: the current key, and when it changes. */
export interface TicketKeySource {
  current(): Buffer | undefined;
  subscribe(listener: () => void): () => void;
}

export interface TicketKeyRingOptions {
  store: TicketKeyStore;
  box: SecretBox;
  rotationMs: number;
  logger: Logger;
  now?: () => number;
  /** How often a replica checks whether a rotation is due. Default min(rotationMs / 10, 60 s). */
  checkIntervalMs?: number;
}

export class TicketKeyRing implements TicketKeySource {
  private key: Buffer | undefined;
  private createdAt = '';
  private readonly listeners: Listeners<void>;
  private timer: NodeJS.Timeout | undefined;
  private stopWatch: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private readonly now: () => number;

  constructor(private readonly options: TicketKeyRingOptions) {
    this.now = options.now ?? Date.now;
    this.listeners = new Listeners(options.logger, 'session-ticket key listener failed');
  }

  current(): Buffer | undefined {
    return this.key;
  }

  subscribe(listener: () => void): () => void {
    return this.listeners.add(listener);
  }

  start(): void {
    this.stopWatch = this.options.store.watch(() => void this.check());
    const every = this.options.checkIntervalMs ?? Math.min(this.options.rotationMs / 10, 60_000);
    this.timer = setInterval(() => void this.check(), every);
    this.timer.unref();
    void this.check();
  }

  stop(): void {
    clearInterval(this.timer);
    this.stopWatch?.();
    this.listeners.clear();
  }

  /** Reads the stored key, adopts it, and replaces it when it is missing or due. One at a time. */
  check(): Promise<void> {
    this.running ??= this.checkOnce().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async checkOnce(): Promise<void> {
    const { store, box, logger, rotationMs } = this.options;
    try {
      let stored = await store.read();
      const due = stored === undefined || this.now() - Date.parse(stored.value.createdAt) >= rotationMs;
      if (due) {
        const value: StoredTicketKey = { createdAt: new Date(this.now()).toISOString(), sealed: box.seal(randomBytes(TICKET_KEY_BYTES), SEAL_ID) };
        if (await store.replace(value, stored?.revision)) {
          logger.info({ createdAt: value.createdAt }, stored === undefined ? 'created the shared session-ticket key' : 'rotated the shared session-ticket key');
        }
        // Won or lost, what is stored now is the key.
        stored = await store.read();
      }
      if (stored === undefined || stored.value.createdAt === this.createdAt) return;
      const key = box.open(stored.value.sealed, SEAL_ID);
      if (key.length !== TICKET_KEY_BYTES) throw new Error(`the stored session-ticket key has ${key.length} bytes, not ${TICKET_KEY_BYTES}`);
      this.key = key;
      this.createdAt = stored.value.createdAt;
      this.listeners.notify();
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'cannot read or rotate the shared session-ticket key; retrying');
    }
  }
}

/** TicketKeyStore on etcd (`<prefix>/secrets/session-ticket-keys`). */
export class EtcdTicketKeyStore implements TicketKeyStore {
  private readonly key: string;

  constructor(
    private readonly client: Etcd3,
    prefix: string,
    private readonly logger: Logger,
    private readonly deadlineMs = 4_000,
  ) {
    this.key = new EtcdKeys(prefix).ticketKeys;
  }

  read(): Promise<{ value: StoredTicketKey; revision: string } | undefined> {
    return guarded('reading the session-ticket key', this.deadlineMs, async () => {
      const res = await this.client.get(this.key).exec();
      const kv = res.kvs[0];
      return kv === undefined ? undefined : { value: JSON.parse(kv.value.toString('utf8')) as StoredTicketKey, revision: String(kv.mod_revision) };
    });
  }

  replace(value: StoredTicketKey, revision: string | undefined): Promise<boolean> {
    return guarded('rotating the session-ticket key', this.deadlineMs, async () => {
      const txn = revision === undefined ? this.client.if(this.key, 'Create', '==', 0) : this.client.if(this.key, 'Mod', '==', revision);
      return (await txn.then(this.client.put(this.key).value(JSON.stringify(value))).commit()).succeeded;
    });
  }

  watch(onChange: () => void): () => void {
    const watcher = this.client.watch().key(this.key).watcher();
    watcher.on('connected', onChange);
    watcher.on('put', onChange);
    watcher.on('error', (err) => this.logger.warn({ err: err.message }, 'session-ticket key watch error'));
    return () => void watcher.cancel().catch(() => undefined);
  }
}

/** TicketKeyStore in memory, for tests. */
export class MemoryTicketKeyStore implements TicketKeyStore {
  private value: StoredTicketKey | undefined;
  private revision = 0;
  private readonly watchers = new Set<() => void>();

  async read(): Promise<{ value: StoredTicketKey; revision: string } | undefined> {
    return this.value === undefined ? undefined : { value: structuredClone(this.value), revision: String(this.revision) };
  }

  async replace(value: StoredTicketKey, revision: string | undefined): Promise<boolean> {
    if ((revision === undefined) !== (this.value === undefined) || (revision !== undefined && revision !== String(this.revision))) return false;
    this.value = structuredClone(value);
    this.revision++;
    for (const w of [...this.watchers]) w();
    return true;
  }

  watch(onChange: () => void): () => void {
    this.watchers.add(onChange);
    return () => this.watchers.delete(onChange);
  }
}
