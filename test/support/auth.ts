/**
 * The admin secret of every control plane the tests start (planes.ts writes it to the file given
 * as --admin-token-file), and the token api() sends unless told otherwise. Fixed, so that a test
 * can restart a control plane or start a second replica and keep using it.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const TEST_ADMIN_TOKEN = 'e2e-bootstrap-admin-secret-0123456789abcdef';
/** The actor the control plane records for TEST_ADMIN_TOKEN. */
export const TEST_ADMIN_ACTOR = 'bootstrap-admin';

/** A fresh file holding TEST_ADMIN_TOKEN, for --admin-token-file. */
export function adminTokenFile(): string {
  const path = join(mkdtempSync(join(tmpdir(), 'lb-admin-')), 'admin-token');
  writeFileSync(path, `${TEST_ADMIN_TOKEN}\n`, { mode: 0o600 });
  return path;
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}
