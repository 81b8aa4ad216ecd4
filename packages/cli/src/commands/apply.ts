/**
 * `lbctl apply -f lb.yaml`: the whole config from a file, the GitOps way. It reads the current
 * version, asks the control plane for the diff (a dry run guarded by If-Match), shows it, asks (or
 * takes --yes), and commits with the same If-Match: a change someone made in between is never
 * overwritten, the apply fails with exit 5 instead. `--if-match N` pins the version the diff was
 * reviewed against (e.g. the one `lbctl diff` printed in a pull request).
 */
import { confirm } from '../confirm.js';
import type { Context } from '../context.js';
import { readConfigDocument } from '../config-file.js';
import { type Change, formatChanges } from '../diff-format.js';
import { CliError, EXIT } from '../exit-codes.js';

export interface ApplyOptions {
  file: string;
  dryRun?: boolean;
  yes?: boolean;
  ifMatch?: string;
  message?: string;
}

interface WriteAnswer {
  version: number;
  committed: boolean;
  changes: Change[];
}

export function versionOption(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,12}$/.test(value)) throw new CliError(EXIT.USAGE, `${flag} must be a config version (a whole number), not "${value}"`);
  return Number(value);
}

export async function apply(ctx: Context, options: ApplyOptions): Promise<void> {
  const config = readConfigDocument(options.file);
  const pinned = versionOption(options.ifMatch, '--if-match');
  const base = pinned ?? ((await ctx.client.request('GET', '/v1/config')).body.version as number);
  const guard = { 'if-match': `"${base}"` };
  const preview = await conflictAware(base, ctx.client.request<WriteAnswer>('PUT', '/v1/config?dryRun=true', config, guard));
  const changes = preview.body.changes;
  if (changes.length === 0) {
    ctx.note(`no changes: version ${base} already matches ${options.file}`);
    if (ctx.format !== 'table') ctx.out(JSON.stringify({ version: base, committed: false, changes: [] }));
    return;
  }
  ctx.note(`${changes.length} change(s) to version ${base}:`);
  ctx.out(ctx.format === 'table' ? formatChanges(changes) : JSON.stringify({ ...preview.body, version: base }, null, 2));
  if (options.dryRun) {
    ctx.note('dry run: nothing applied');
    return;
  }
  await confirm(`apply ${changes.length} change(s) as version ${base + 1}?`, options.yes === true);
  const message = options.message ?? `lbctl apply ${options.file}`;
  const done = await conflictAware(base, ctx.client.request<WriteAnswer>('PUT', '/v1/config', config, { ...guard, 'x-change-message': message }));
  ctx.note(`applied as version ${done.body.version}`);
  if (ctx.format !== 'table') ctx.out(JSON.stringify(done.body, null, 2));
}

/** A lost If-Match gets an explanation of what happened and what to do. */
export async function conflictAware<T>(base: number, pending: Promise<T>): Promise<T> {
  try {
    return await pending;
  } catch (err) {
    if (err instanceof CliError && err.code === EXIT.CONFLICT) {
      throw new CliError(
        EXIT.CONFLICT,
        `nothing applied: the config changed since version ${base} (${err.message.replace(/^.*?: 412 LB_CP_STALE_VERSION: /, '')}); review the new diff and apply again`,
      );
    }
    throw err;
  }
}
