/**
 * Private keys sent inside a whole config (PUT /v1/config, --bootstrap-config) as
 * `certificates.<name>.privateKey`: a write-only field. They are taken out before the config is
 * validated (the config never holds a key), checked against their certificate, and stored sealed
 * before the version that needs them is committed.
 */
import { parseCertificateChain, type FieldError } from '@lb/shared';
import { checkPrivateKey, type CheckedKey } from '../secrets/key-vault.js';

export interface InlineKeys {
  /** The body without any `privateKey` member (a copy when it had one). */
  body: unknown;
  /** Keys that matched their certificate. */
  keys: CheckedKey[];
  errors: FieldError[];
}

export function takeInlineKeys(body: unknown, prefix = ''): InlineKeys {
  const certificates = (body as { certificates?: unknown } | null)?.certificates;
  if (certificates === null || typeof certificates !== 'object' || Array.isArray(certificates)) return { body, keys: [], errors: [] };
  const entries = Object.entries(certificates as Record<string, unknown>).filter(
    ([, resource]) => resource !== null && typeof resource === 'object' && Object.hasOwn(resource, 'privateKey'),
  );
  if (entries.length === 0) return { body, keys: [], errors: [] };
  const copy = { ...(body as object), certificates: { ...(certificates as object) } } as { certificates: Record<string, Record<string, unknown>> };
  const keys: CheckedKey[] = [];
  const errors: FieldError[] = [];
  for (const [name, resource] of entries) {
    const { privateKey, ...rest } = resource as Record<string, unknown>;
    copy.certificates[name] = rest;
    const field = `${prefix}certificates.${name}.privateKey`;
    if (typeof privateKey !== 'string') {
      errors.push({ field, message: 'must be a PEM private key (a string)' });
      continue;
    }
    const parsed = typeof rest.certificate === 'string' ? parseCertificateChain(rest.certificate) : undefined;
    if (parsed === undefined || !parsed.ok) continue; // validateConfig reports the certificate
    const checked = checkPrivateKey(privateKey, parsed.chain[0]!);
    if (checked.ok) keys.push(checked.key);
    else errors.push({ field, message: checked.message });
  }
  return { body: copy, keys, errors };
}
