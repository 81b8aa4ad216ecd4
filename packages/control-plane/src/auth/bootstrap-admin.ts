/**
 * The first admin credential, so a fresh install can create the others:
 * - `--admin-token-file PATH`: the file's content is an admin secret this replica accepts
 *   (actor `bootstrap-admin`). A missing file is created with a new secret (mode 0600), which is
 *   how ./deploy/up.sh gets its token; a Kubernetes Secret mounted as the file works the same way.
 * - without the flag: the first start on an empty etcd creates the API token `admin` and prints
 *   its secret once on stderr; later starts (and other replicas) never print it again.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { FlagError, type Logger } from '@lb/shared';
import { BOOTSTRAP_ACTOR } from './authenticator.js';
import { hashSecret, newSecret } from './token-secret.js';
import type { TokenStore } from './token-store.js';

export const MIN_ADMIN_SECRET_LENGTH = 16;
export const FIRST_ADMIN_NAME = 'admin';

export interface AdminTokenFile {
  secret: string;
  /** True when this start wrote the file. */
  created: boolean;
}

/** Reads the secret from `path`, creating the file when it does not exist. Throws FlagError. */
export function readOrCreateAdminTokenFile(path: string): AdminTokenFile {
  try {
    const fresh = `lb_${BOOTSTRAP_ACTOR}_${randomBytes(32).toString('hex')}`;
    // 'wx': never overwrite, so two replicas sharing the file cannot end up with different secrets.
    writeFileSync(path, `${fresh}\n`, { flag: 'wx', mode: 0o600 });
    return { secret: fresh, created: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new FlagError(`--admin-token-file ${path}: cannot create it: ${(err as Error).message}`);
  }
  let secret: string;
  try {
    secret = readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new FlagError(`--admin-token-file ${path}: cannot read it: ${(err as Error).message}`);
  }
  if (secret.length < MIN_ADMIN_SECRET_LENGTH || /\s/.test(secret)) {
    throw new FlagError(
      `--admin-token-file ${path} must hold one secret of at least ${MIN_ADMIN_SECRET_LENGTH} characters without spaces (e.g. openssl rand -hex 32 > ${path})`,
    );
  }
  return { secret, created: false };
}

export interface FirstAdminOptions {
  tokens: TokenStore;
  logger: Logger;
  /** Where the secret is shown, once (stderr in main.ts). */
  print: (text: string) => void;
  retryDelayMs?: number;
  isStopped: () => boolean;
}

/** Creates the `admin` token if this etcd never had a first admin, retrying while etcd is down. */
export async function ensureFirstAdminToken(options: FirstAdminOptions): Promise<void> {
  const secret = newSecret(FIRST_ADMIN_NAME);
  const record = {
    name: FIRST_ADMIN_NAME,
    role: 'admin' as const,
    createdAt: new Date().toISOString(),
    createdBy: 'lb-control-plane',
    hash: await hashSecret(secret),
  };
  while (!options.isStopped()) {
    try {
      if (await options.tokens.createFirstAdmin(record)) {
        options.logger.warn({ token: FIRST_ADMIN_NAME }, 'created the first admin token; its secret is printed on stderr this once');
        options.print(
          `\nlb-control-plane: created the first admin token "${FIRST_ADMIN_NAME}". Its secret is shown only this once:\n\n  ${secret}\n\nUse it as: Authorization: Bearer <secret> (or LB_TOKEN for lbctl), create other tokens, then revoke it if you like.\n\n`,
        );
      }
      return;
    } catch (err) {
      options.logger.warn({ err: (err as Error).message }, 'cannot check for a first admin token yet; retrying');
      await new Promise((resolve) => setTimeout(resolve, options.retryDelayMs ?? 1_000));
    }
  }
}
