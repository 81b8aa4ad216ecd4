#!/usr/bin/env node
/** lbctl: runs the command line and turns its outcome into the documented exit codes. */
import { createRequire } from 'node:module';
import { CommanderError } from 'commander';
import { CliError, EXIT } from './exit-codes.js';
import { buildProgram } from './program.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };
const io = { out: (text: string) => process.stdout.write(text), err: (text: string) => process.stderr.write(text), env: process.env };

try {
  await buildProgram(io, version).parseAsync(process.argv);
  process.exitCode = EXIT.OK;
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version end "with an error" in commander's terms; usage errors are exit 2.
    process.exitCode = err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
  } else if (err instanceof CliError) {
    io.err(`lbctl: ${err.message}\n${err.details.map((d) => `  ${d}\n`).join('')}`);
    process.exitCode = err.code;
  } else {
    io.err(`lbctl: unexpected error: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = EXIT.UNAVAILABLE;
  }
}
