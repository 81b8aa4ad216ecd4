/**
 * `lbctl watch nodes`: the data planes and the version each runs, redrawn as it changes, until
 * Ctrl-C — or, with --until-converged, until every connected node runs the target version (the
 * current one, or --target N): exit 0 then, 8 when --timeout passes first.
 */
import type { Context } from '../context.js';
import { CliError, EXIT } from '../exit-codes.js';
import { nodesTable } from './get.js';

export interface WatchOptions {
  untilConverged?: boolean;
  target?: string;
  timeout?: string;
  interval?: string;
}

interface NodeView {
  id: string;
  status: string;
  configVersion: number;
}

function positive(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new CliError(EXIT.USAGE, `${flag} must be a positive number, not "${value}"`);
  return n;
}

export async function watch(ctx: Context, what: string, options: WatchOptions, signal?: AbortSignal): Promise<void> {
  if (what !== 'nodes') throw new CliError(EXIT.USAGE, `cannot watch "${what}": only nodes`);
  const pinned = options.target === undefined ? undefined : Number(options.target);
  if (pinned !== undefined && (!Number.isInteger(pinned) || pinned < 0))
    throw new CliError(EXIT.USAGE, `--target must be a config version, not "${options.target}"`);
  const timeoutMs = positive(options.timeout, '--timeout', 120) * 1000;
  const intervalMs = positive(options.interval, '--interval', 1000);
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const [nodes, config] = await Promise.all([ctx.client.request('GET', '/v1/nodes'), ctx.client.request('GET', '/v1/config')]);
    const target = pinned ?? (config.body.version as number);
    const list = nodes.body.nodes as NodeView[];
    const connected = list.filter((n) => n.status === 'connected');
    const converged = connected.length > 0 && connected.every((n) => n.configVersion === target);
    const state = JSON.stringify({ target, list });
    if (state !== last) {
      last = state;
      const ready = connected.filter((n) => n.configVersion === target).length;
      if (ctx.format === 'table') {
        ctx.out(
          `${new Date().toISOString()}  version ${target}: ${ready}/${connected.length} connected node(s) run it\n${nodesTable(list as never, target)}\n`,
        );
      } else {
        ctx.out(JSON.stringify({ at: new Date().toISOString(), version: target, converged, nodes: list }));
      }
    }
    if (options.untilConverged && converged) {
      ctx.note(`converged: every connected node runs version ${target}`);
      return;
    }
    if (options.untilConverged && Date.now() >= deadline) {
      throw new CliError(
        EXIT.TIMEOUT,
        `not converged after ${timeoutMs / 1000} s: ${
          connected
            .filter((n) => n.configVersion !== target)
            .map((n) => `${n.id} runs ${n.configVersion}`)
            .join(', ') || 'no node is connected'
        }`,
      );
    }
    if (signal?.aborted) return;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
