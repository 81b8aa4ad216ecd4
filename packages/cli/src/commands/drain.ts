/** `lbctl drain POOL/BACKEND`: no new requests to the backend on any data plane; those in flight finish. */
import type { Context } from '../context.js';
import { CliError, EXIT } from '../exit-codes.js';

export async function drain(ctx: Context, target: string, options: { message?: string }): Promise<void> {
  const match = /^([a-z0-9][a-z0-9-]{0,62})\/([a-z0-9][a-z0-9-]{0,62})$/.exec(target);
  if (!match) throw new CliError(EXIT.USAGE, `"${target}" is not POOL/BACKEND (e.g. web/backend-1)`);
  const [, pool, id] = match as unknown as [string, string, string];
  const headers = { 'x-change-message': options.message ?? `lbctl drain ${pool}/${id}` };
  const { body } = await ctx.client.request('PATCH', `/v1/pools/${pool}/backends/${id}`, { state: 'draining' }, headers);
  if (ctx.format !== 'table') ctx.out(JSON.stringify(body, null, 2));
  else if (!body.committed) ctx.out(`${pool}/${id} was already draining (version ${body.version})`);
  else ctx.out(`${pool}/${id} is draining as of version ${body.version}; watch it converge with: lbctl watch nodes --until-converged`);
}
