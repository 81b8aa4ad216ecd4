/**
 * The audit trail: one entry per write (committed or failed) and per refused attempt (401/403),
 * stored under `<prefix>/audit/<id>` where the id starts with the ISO time, so etcd's key order
 * is time order and a time filter is a key range. etcd-audit-log.ts stores it; this file holds
 * the contract and the in-memory version for unit tests.
 */
import { randomBytes } from 'node:crypto';
import type { Role } from '../auth/roles.js';

export const AUDIT_KINDS = ['write', 'refused'] as const;
export type AuditKind = (typeof AUDIT_KINDS)[number];

export interface AuditEntry {
  /** `<ISO time>_<random>`: unique, sorts by time; the `before` cursor of GET /v1/audit. */
  id: string;
  /** ISO 8601. */
  at: string;
  kind: AuditKind;
  /** The token's name; null when no valid token was sent. */
  actor: string | null;
  role?: Role;
  /** The caller's address as the control plane's socket saw it. */
  source: string;
  requestId: string;
  method: string;
  /** The path without the query string. */
  path: string;
  status: number;
  /** The problem code of a failed or refused request. */
  code?: string;
  /** Writes: the version the write committed, or the current one when it committed nothing. */
  version?: number;
  committed?: boolean;
  message?: string;
  /** Refused attempts folded into this entry (see audit-recorder.ts); absent means 1. */
  count?: number;
}

export type NewAuditEntry = Omit<AuditEntry, 'id'>;

export interface AuditQuery {
  actor?: string;
  kind?: AuditKind;
  /** ISO 8601, inclusive. */
  since?: string;
  /** ISO 8601, inclusive. */
  until?: string;
  /** Only entries older than this id (the `next` of the previous page). */
  before?: string;
  limit: number;
}

export interface AuditPage {
  /** Newest first. */
  entries: AuditEntry[];
  /** Present when there may be more: pass it as `before`. */
  next?: string;
}

export interface AuditLog {
  append(entry: NewAuditEntry): Promise<AuditEntry>;
  list(query: AuditQuery): Promise<AuditPage>;
  /** Deletes the oldest entries beyond the newest `keep`; returns how many went. */
  prune(keep: number): Promise<number>;
}

export function auditId(at: string): string {
  return `${at}_${randomBytes(4).toString('hex')}`;
}

export function matches(entry: AuditEntry, query: AuditQuery): boolean {
  if (query.actor !== undefined && entry.actor !== query.actor) return false;
  if (query.kind !== undefined && entry.kind !== query.kind) return false;
  if (query.since !== undefined && entry.at < query.since) return false;
  if (query.until !== undefined && entry.at > query.until) return false;
  if (query.before !== undefined && entry.id >= query.before) return false;
  return true;
}

/** For unit tests. */
export class MemoryAuditLog implements AuditLog {
  readonly entries: AuditEntry[] = [];

  async append(entry: NewAuditEntry): Promise<AuditEntry> {
    const stored = { ...entry, id: auditId(entry.at) };
    this.entries.push(stored);
    this.entries.sort((a, b) => (a.id < b.id ? -1 : 1));
    return stored;
  }

  async list(query: AuditQuery): Promise<AuditPage> {
    const found = this.entries.filter((e) => matches(e, query)).reverse();
    const page = found.slice(0, query.limit);
    return found.length > query.limit ? { entries: page, next: page[page.length - 1]!.id } : { entries: page };
  }

  async prune(keep: number): Promise<number> {
    const excess = Math.max(0, this.entries.length - keep);
    this.entries.splice(0, excess);
    return excess;
  }
}
