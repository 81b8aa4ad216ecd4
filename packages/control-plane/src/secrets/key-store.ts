/**
 * Where private keys live: sealed (secret-box.ts), one per key pair, under the id of the public
 * key (publicKeyId in @lb/shared). Entries are immutable — a key pair never changes — so every
 * version that names a certificate finds its key however often it is rolled back and forth.
 * etcd-key-store.ts is the real one; MemoryKeyStore serves unit tests.
 */
import type { SealedValue } from './secret-box.js';

export interface StoredKey {
  /** The public key's id (hex SHA-256 of its SubjectPublicKeyInfo). */
  id: string;
  /** ISO 8601: when it was first stored. */
  storedAt: string;
  sealed: SealedValue;
}

export interface KeyStore {
  /** Stores the key unless one with this id exists (the same pair: nothing to do). */
  put(key: StoredKey): Promise<void>;
  get(id: string): Promise<StoredKey | undefined>;
  /** Which of `ids` are stored. */
  has(ids: readonly string[]): Promise<Set<string>>;
}

export class MemoryKeyStore implements KeyStore {
  readonly keys = new Map<string, StoredKey>();

  async put(key: StoredKey): Promise<void> {
    if (!this.keys.has(key.id)) this.keys.set(key.id, structuredClone(key));
  }

  async get(id: string): Promise<StoredKey | undefined> {
    const key = this.keys.get(id);
    return key === undefined ? undefined : structuredClone(key);
  }

  async has(ids: readonly string[]): Promise<Set<string>> {
    return new Set(ids.filter((id) => this.keys.has(id)));
  }
}
