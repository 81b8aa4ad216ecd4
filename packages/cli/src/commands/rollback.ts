/** `lbctl rollback N`: a new version whose config equals version N's, after showing what it changes. */
import { confirm } from '../confirm.js';
import type { Context } from '../context.js';
import { type Change, formatChanges } from '../diff-format.js';
import { CliError, EXIT } from '../exit-codes.js';
import { conflictAware, versionOption } from './apply.js';

export async function rollback(ctx: Context, target: string, options: { dryRun?: boolean; yes?: boolean; message?: string }): Promise<void> {
  const n = versionOption(target, 'the version to roll back to');
  if (n === undefined || n < 1) throw new CliError(EXIT.USAGE, 'the version to roll back to must be 1 or more');
  const base = (await ctx.client.request('GET', '/v1/config')).body.version as number;
  const guard = { 'if-match': `"${base}"` };
  const preview = await conflictAware(base, ctx.client.request<{ changes: Change[] }>('POST', `/v1/versions/${n}/rollback?dryRun=true`, undefined, guard));
  if (preview.body.changes.length === 0) {
    ctx.note(`no changes: version ${base} already has the config of version ${n}`);
    return;
  }
  ctx.note(`rolling back to version ${n} changes version ${base}:`);
  ctx.out(ctx.format === 'table' ? formatChanges(preview.body.changes) : JSON.stringify(preview.body, null, 2));
  if (options.dryRun) {
    ctx.note('dry run: nothing applied');
    return;
  }
  await confirm(`roll back to version ${n} as version ${base + 1}?`, options.yes === true);
  const headers = { ...guard, ...(options.message !== undefined ? { 'x-change-message': options.message } : {}) };
  const done = await conflictAware(base, ctx.client.request('POST', `/v1/versions/${n}/rollback`, undefined, headers));
  ctx.note(`rolled back to version ${n} as version ${done.body.version}`);
  if (ctx.format !== 'table') ctx.out(JSON.stringify(done.body, null, 2));
}
