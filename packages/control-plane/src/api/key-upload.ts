/** Private keys sent with a write (PUT /v1/certificates/{name}, or inline in PUT /v1/config). */
import type { CheckedKey } from '../secrets/key-vault.js';
import { NoSecretsKeyError } from '../secrets/key-vault.js';
import { ApiError } from '../errors.js';
import type { WriteRequest } from '../versioning/config-writer.js';
import type { ApiDeps } from './deps.js';

function secretsKeyMissing(): ApiError {
  return new ApiError('LB_CP_SECRETS_KEY_MISSING', `${new NoSecretsKeyError().message}; nothing was changed`);
}

/**
 * Stores the keys sent with a write before the version that needs them is committed, so that it
 * is never pushed without them (a key stored for a write that then fails is harmless: nothing
 * names it). A dry run stores nothing: its keys count as present (WriteRequest.pendingKeys).
 */
export async function withKeys(deps: Pick<ApiDeps, 'tls'>, write: WriteRequest, keys: readonly CheckedKey[]): Promise<WriteRequest> {
  if (keys.length === 0) return write;
  if (!deps.tls.vault.enabled) throw secretsKeyMissing();
  if (write.dryRun) return { ...write, pendingKeys: new Set(keys.map((k) => k.id)) };
  for (const key of keys) await deps.tls.vault.put(key);
  return write;
}
