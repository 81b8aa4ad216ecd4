/** The command line of lbctl (commander): commands, their flags, and the global options. */
import { Command, Option } from 'commander';
import { ApiClient } from './client.js';
import { apply } from './commands/apply.js';
import { diff } from './commands/diff.js';
import { drain } from './commands/drain.js';
import { get, RESOURCES } from './commands/get.js';
import { rollback } from './commands/rollback.js';
import { watch } from './commands/watch.js';
import type { Context } from './context.js';
import { EXIT_CODES_HELP } from './exit-codes.js';
import { FORMATS, parseFormat } from './output.js';
import { resolveSettings, type GlobalOptions } from './settings.js';

export interface Io {
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
}

export function buildProgram(io: Io, version: string): Command {
  const program = new Command('lbctl')
    .description('Operate the lb load balancer through its control plane.')
    .version(version)
    .option('--url <url>', 'control-plane REST address (env LB_URL; default http://127.0.0.1:8080)')
    .option('--token-file <path>', 'file holding the API token (env LB_TOKEN holds the token itself, LB_TOKEN_FILE a file)')
    .option('--config <path>', 'YAML file with url and token or tokenFile (env LBCTL_CONFIG; default ~/.config/lbctl/config.yaml)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(FORMATS).default('table'))
    .addHelpText('after', `\n${EXIT_CODES_HELP}`)
    .showHelpAfterError('(run lbctl --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err });

  const context = (): Context => {
    const globals = program.opts<GlobalOptions & { output: string }>();
    return {
      client: new ApiClient(resolveSettings(globals, io.env)),
      format: parseFormat(globals.output),
      out: (text) => io.out(`${text}\n`),
      note: (text) => io.err(`${text}\n`),
    };
  };

  program
    .command('get')
    .description(`show what runs: ${RESOURCES.join(', ')} (a name shows one pool, route, listener, certificate, node, pool's health or version)`)
    .argument('<resource>', RESOURCES.join('|'))
    .argument('[name]', 'one pool, route, node, pool (health) or version')
    .option('--limit <n>', 'versions: how many, newest first', '20')
    .action((resource: string, name: string | undefined, options: { limit: string }) => get(context(), resource, name, options));

  program
    .command('apply')
    .description('make the config what a YAML or JSON file says: shows the diff, asks, then commits with If-Match')
    .requiredOption('-f, --file <path>', 'the config file (- for stdin)')
    .option('--dry-run', 'show the diff only')
    .option('-y, --yes', 'do not ask (needed without a terminal, e.g. in CI)')
    .option('--if-match <version>', 'apply only if this version is still current (default: the version read now)')
    .option('-m, --message <text>', 'the change message recorded in history (default "lbctl apply FILE")')
    .action((options: { file: string; dryRun?: boolean; yes?: boolean; ifMatch?: string; message?: string }) => apply(context(), options));

  program
    .command('diff')
    .description('show how a file differs from what runs (exit 1 when it does)')
    .requiredOption('-f, --file <path>', 'the config file (- for stdin)')
    .action((options: { file: string }) => diff(context(), options));

  program
    .command('rollback')
    .description("make a new version whose config equals version N's (shows the diff, asks)")
    .argument('<version>', 'the version to roll back to')
    .option('--dry-run', 'show the diff only')
    .option('-y, --yes', 'do not ask')
    .option('-m, --message <text>', 'the change message (default "rollback to N")')
    .action((target: string, options: { dryRun?: boolean; yes?: boolean; message?: string }) => rollback(context(), target, options));

  program
    .command('drain')
    .description('stop new requests to a backend on every data plane (those in flight finish)')
    .argument('<pool/backend>', 'e.g. web/backend-1')
    .option('-m, --message <text>', 'the change message')
    .action((target: string, options: { message?: string }) => drain(context(), target, options));

  program
    .command('watch')
    .description('follow the data planes and the version each runs')
    .argument('<what>', 'nodes')
    .option('--until-converged', 'exit 0 once every connected node runs the target version (exit 8 at --timeout)')
    .option('--target <version>', 'the version to converge on (default: the current one)')
    .option('--timeout <seconds>', 'with --until-converged: give up after this long', '120')
    .option('--interval <ms>', 'how often to look', '1000')
    .action((what: string, options: { untilConverged?: boolean; target?: string; timeout?: string; interval?: string }) => watch(context(), what, options));

  return program;
}
