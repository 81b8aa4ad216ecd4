/** Asks before a change. Without a terminal there is nobody to ask: the caller must pass --yes. */
import { createInterface } from 'node:readline/promises';
import { CliError, EXIT } from './exit-codes.js';

export async function confirm(question: string, yes: boolean): Promise<void> {
  if (yes) return;
  if (!process.stdin.isTTY)
    throw new CliError(EXIT.NOT_CONFIRMED, 'not applied: stdin is not a terminal, so nobody can confirm; pass --yes (or --dry-run to only look)');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = (await rl.question(`${question} [y/N] `)).trim().toLowerCase();
    if (answer !== 'y' && answer !== 'yes') throw new CliError(EXIT.NOT_CONFIRMED, 'not applied: not confirmed');
  } finally {
    rl.close();
  }
}
