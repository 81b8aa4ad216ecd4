/** `lbctl diff -f lb.yaml`: drift between a file and what runs (exit 1 when they differ, like diff(1)). */
import type { Context } from '../context.js';
import { readConfigDocument } from '../config-file.js';
import { type Change, formatChanges } from '../diff-format.js';
import { CliError, EXIT } from '../exit-codes.js';

export async function diff(ctx: Context, options: { file: string }): Promise<void> {
  const config = readConfigDocument(options.file);
  // The dry run answers how the file would change what runs: the drift, with the control plane's
  // own validation and defaults, so an omitted default is not reported as a difference.
  const { body } = await ctx.client.request<{ version: number; changes: Change[] }>('PUT', '/v1/config?dryRun=true', config);
  if (ctx.format !== 'table') ctx.out(JSON.stringify({ version: body.version, changes: body.changes }, null, 2));
  if (body.changes.length === 0) {
    ctx.note(`no drift: ${options.file} matches version ${body.version}`);
    return;
  }
  if (ctx.format === 'table') ctx.out(formatChanges(body.changes));
  throw new CliError(EXIT.DRIFT, `${body.changes.length} difference(s) between ${options.file} and version ${body.version} (what applying it would change)`);
}
