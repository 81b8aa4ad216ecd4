/**
 * The key material a snapshot brings (ConfigSnapshot.secrets): private keys by certificate name
 * and the session-ticket key every node shares. Kept apart from the config, compared apart (a
 * rotated ticket key re-sends the same version), and written to the cache file beside it.
 */
import { createHash } from 'node:crypto';
import type { TlsSecrets } from '@lb/shared';

export interface KeyMaterial {
  /** PEM private keys by certificate name. */
  readonly keys: ReadonlyMap<string, string>;
  /** The shared ticket key (48 bytes); undefined: each server keeps its own. */
  readonly ticketKey: Buffer | undefined;
  /** Why keys are missing, as the control plane said; '' when it said nothing. */
  readonly unavailableReason: string;
  /** Changes whenever anything above does (never derived from a key by a reversible step). */
  readonly fingerprint: string;
}

export const NO_KEY_MATERIAL: KeyMaterial = Object.freeze({ keys: new Map(), ticketKey: undefined, unavailableReason: '', fingerprint: '' });

export function keyMaterialOf(secrets: TlsSecrets | null | undefined): KeyMaterial {
  if (secrets == null) return NO_KEY_MATERIAL;
  const keys = new Map<string, string>();
  for (const k of secrets.privateKeys ?? []) keys.set(k.certificate, k.privateKeyPem);
  const ticket = secrets.sessionTicketKeys?.[0];
  const ticketKey = ticket === undefined || ticket.length === 0 ? undefined : Buffer.from(ticket);
  const hash = createHash('sha256');
  for (const [name, pem] of [...keys].sort(([a], [b]) => (a < b ? -1 : 1))) hash.update(`${name}\u0000${pem}\u0000`);
  hash.update(ticketKey ?? Buffer.alloc(0));
  hash.update(`\u0000${secrets.unavailableReason ?? ''}`);
  return { keys, ticketKey, unavailableReason: secrets.unavailableReason ?? '', fingerprint: hash.digest('hex') };
}

/** Back to the wire shape: for workers (IPC) and the cache file. */
export function toSecrets(material: KeyMaterial): TlsSecrets {
  return {
    privateKeys: [...material.keys].map(([certificate, privateKeyPem]) => ({ certificate, privateKeyPem })),
    sessionTicketKeys: material.ticketKey === undefined ? [] : [material.ticketKey],
    unavailableReason: material.unavailableReason,
  };
}

/** The cache file's JSON form of secrets (ticket keys as base64). */
export interface CachedSecrets {
  privateKeys: Array<{ certificate: string; privateKeyPem: string }>;
  sessionTicketKeys: string[];
  unavailableReason: string;
}

export function secretsToJson(secrets: TlsSecrets): CachedSecrets {
  return { ...secrets, privateKeys: [...secrets.privateKeys], sessionTicketKeys: secrets.sessionTicketKeys.map((k) => Buffer.from(k).toString('base64')) };
}

export function secretsFromJson(value: unknown): TlsSecrets | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const v = value as Partial<CachedSecrets>;
  if (!Array.isArray(v.privateKeys) || !Array.isArray(v.sessionTicketKeys)) return undefined;
  const privateKeys = v.privateKeys.filter((k) => typeof k?.certificate === 'string' && typeof k?.privateKeyPem === 'string');
  const sessionTicketKeys = v.sessionTicketKeys.filter((k) => typeof k === 'string').map((k) => Buffer.from(k, 'base64'));
  return { privateKeys, sessionTicketKeys, unavailableReason: typeof v.unavailableReason === 'string' ? v.unavailableReason : '' };
}
