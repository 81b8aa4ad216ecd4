/**
 * Where API tokens live: `<prefix>/tokens/<name>` in etcd (etcd-token-store.ts), or memory in unit
 * tests. Every replica keeps a copy of all records in memory, kept current by a watch, so checking
 * a token needs no etcd round trip and a revocation reaches every replica within the watch's
 * latency.
 */
import type { Role } from './roles.js';

/** One token as stored: never the secret, only its scrypt hash. */
export interface TokenRecord {
  name: string;
  role: Role;
  /** ISO 8601. */
  createdAt: string;
  /** The actor that created it (a token name). */
  createdBy: string;
  /** ISO 8601; absent: never expires. */
  expiresAt?: string;
  /** token-secret.ts's hashSecret() output. */
  hash: string;
}

/** What GET /v1/tokens shows: everything but the hash. */
export type TokenSummary = Omit<TokenRecord, 'hash'>;

export function tokenSummary(record: TokenRecord): TokenSummary {
  const { hash: _hash, ...rest } = record;
  return rest;
}

export interface TokenStore {
  /** Resolves once the in-memory copy has been loaded (waits through etcd outages: callers bound it). */
  ready(): Promise<void>;
  /** From the in-memory copy: no I/O. Undefined for a name that does not exist (or was revoked). */
  get(name: string): TokenRecord | undefined;
  /**
   * Every token, read from the store itself rather than the copy, so a list on one replica shows a
   * token created on another a moment ago (the copy may still be waiting for its watch event).
   */
  list(): Promise<TokenRecord[]>;
  /** Creates the record only if no token has the name; false when one does. */
  create(record: TokenRecord): Promise<boolean>;
  /**
   * Creates the first admin token of a cluster: succeeds once per store lifetime (a marker stays
   * after the token is deleted), so only the first start ever makes one. False when one was made.
   */
  createFirstAdmin(record: TokenRecord): Promise<boolean>;
  /** Deletes the record; it is gone from this replica's copy when this resolves. False when it did not exist. */
  delete(name: string): Promise<boolean>;
  close(): Promise<void>;
}

/** For unit tests: the same contract, in memory. */
export class MemoryTokenStore implements TokenStore {
  private readonly records = new Map<string, TokenRecord>();

  async ready(): Promise<void> {}

  get(name: string): TokenRecord | undefined {
    return this.records.get(name);
  }

  async list(): Promise<TokenRecord[]> {
    return [...this.records.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  async create(record: TokenRecord): Promise<boolean> {
    if (this.records.has(record.name)) return false;
    this.records.set(record.name, { ...record });
    return true;
  }

  private firstAdminCreated = false;

  async createFirstAdmin(record: TokenRecord): Promise<boolean> {
    if (this.firstAdminCreated || this.records.has(record.name)) return false;
    this.firstAdminCreated = true;
    this.records.set(record.name, { ...record });
    return true;
  }

  async delete(name: string): Promise<boolean> {
    return this.records.delete(name);
  }

  async close(): Promise<void> {}
}
