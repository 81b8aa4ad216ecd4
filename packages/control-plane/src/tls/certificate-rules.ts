/**
 * The rules a write must pass beyond validateConfig that need the key store or the clock:
 *
 * - every certificate a listener serves or a pool presents has its private key stored (or sent
 *   with this very write);
 * - a certificate added or changed by the write is within its validity period, unless the
 *   resource says allowExpired. Only those: a certificate that expired while in use must not
 *   block unrelated writes (or a rollback that keeps it).
 */
import { isExpiredAt, parseCertificateChain, publicKeyId, type FieldError } from '@lb/shared';
import type { KeyVault } from '../secrets/key-vault.js';
import type { WriteVerifier } from '../versioning/config-writer.js';
import { certificatesNeedingKeys, certificateUsers } from './certificate-details.js';

export function certificateRules(vault: KeyVault, now: () => number = Date.now): WriteVerifier {
  return async (next, current, request) => {
    const errors: FieldError[] = [];
    const at = now();
    const ids = new Map<string, string>();
    for (const [name, resource] of Object.entries(next.certificates ?? {})) {
      const parsed = parseCertificateChain(resource.certificate);
      if (!parsed.ok) continue; // validateConfig has reported it
      const leaf = parsed.chain[0]!;
      ids.set(name, publicKeyId(leaf.publicKey));
      const before = current.certificates?.[name];
      const changed = before === undefined || before.certificate !== resource.certificate || before.allowExpired !== resource.allowExpired;
      if (changed && resource.allowExpired !== true && isExpiredAt(leaf, at)) {
        errors.push({
          field: `certificates.${name}.certificate`,
          message: `is not valid now (valid from ${new Date(leaf.validFrom).toISOString()} to ${new Date(leaf.validTo).toISOString()}); set allowExpired to store it anyway`,
        });
      }
    }
    const needed = [...certificatesNeedingKeys(next)].filter((name) => ids.has(name));
    if (needed.length === 0) return errors;
    const stored = await vault.has(needed.map((name) => ids.get(name)!));
    for (const name of needed) {
      const id = ids.get(name)!;
      if (stored.has(id) || request.pendingKeys?.has(id)) continue;
      const hint = vault.enabled ? '' : ' (and start the control plane with --secrets-key-file, without which it keeps no keys)';
      for (const field of certificateUsers(next, name)) {
        if (field.endsWith('.caCertificate')) continue; // a trust anchor needs no key
        errors.push({
          field,
          message: `certificate "${name}" has no private key: upload it with PUT /v1/certificates/${name} {certificate, privateKey}${hint}`,
        });
      }
    }
    return errors;
  };
}
