/**
 * Token secrets and their stored hashes. A secret reads `lb_<name>_<64 hex>`: the name lets the
 * control plane find the one record to check it against (one slow hash per attempt, not one per
 * token), and the `lb_` prefix lets secret scanners spot a leaked one. Only a scrypt hash is
 * stored, so a copy of etcd does not hand out working tokens.
 */
import { createHash, randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { NAME_PATTERN } from '@lb/shared';

/** scrypt cost: N=2^14, r=8, p=1 (16 MiB, tens of ms): OWASP's minimum for interactive logins. */
export const SCRYPT_PARAMS = { N: 16_384, r: 8, p: 1 } as const;
const KEY_BYTES = 32;
const SALT_BYTES = 16;
const SECRET_RE = new RegExp(`^lb_(${NAME_PATTERN.slice(1, -1)})_([0-9a-f]{64})$`);

function scrypt(secret: string, salt: Buffer, params: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCallback(secret, salt, KEY_BYTES, { ...params, maxmem: 64 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** A new secret for the token `name`. */
export function newSecret(name: string): string {
  return `lb_${name}_${randomBytes(32).toString('hex')}`;
}

/** The token name a well-formed secret claims, or undefined for anything else. */
export function nameInSecret(secret: string): string | undefined {
  return SECRET_RE.exec(secret)?.[1];
}

/** `scrypt$N$r$p$<salt b64>$<key b64>`: the parameters travel with the hash so they can be raised later. */
export async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await scrypt(secret, salt, SCRYPT_PARAMS);
  const { N, r, p } = SCRYPT_PARAMS;
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** True when `secret` matches `hash`; false for a wrong secret or a hash this code cannot read. */
export async function verifySecret(secret: string, hash: string): Promise<boolean> {
  const [scheme, n, r, p, salt, key] = hash.split('$');
  if (scheme !== 'scrypt' || salt === undefined || key === undefined) return false;
  const expected = Buffer.from(key, 'base64');
  const actual = await scrypt(secret, Buffer.from(salt, 'base64'), { N: Number(n), r: Number(r), p: Number(p) });
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** A fast digest of a secret, for in-memory lookups of secrets already verified (never stored). */
export function secretDigest(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}
