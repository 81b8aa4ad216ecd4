/**
 * The file `apply` and `diff` read: YAML or JSON (YAML 1.2 reads both), in the API's schema — a
 * bare config `{pools, routes}`, or what `lbctl get config -o yaml` prints (`{version, config}`).
 * The `version` of such a document is dropped: apply compares against what runs when it runs (or
 * against --if-match), not against when the file was written.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { CliError, EXIT } from './exit-codes.js';

export function readConfigDocument(path: string, stdin: () => string = () => readFileSync(0, 'utf8')): unknown {
  let text: string;
  try {
    text = path === '-' ? stdin() : readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError(EXIT.USAGE, `cannot read ${path}: ${(err as Error).message}`);
  }
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (err) {
    throw new CliError(EXIT.USAGE, `${path} is neither YAML nor JSON${where(err)}`);
  }
  if (document === null || typeof document !== 'object' || Array.isArray(document)) {
    throw new CliError(EXIT.USAGE, `${path} must hold a config: a mapping with pools and routes (or the {version, config} that get config prints)`);
  }
  const fields = Object.keys(document);
  if (fields.includes('config') && fields.every((f) => f === 'config' || f === 'version')) return (document as { config: unknown }).config;
  return document;
}

/**
 * Where the parser stopped, and what it says went wrong — never the lines it would quote: the file
 * may hold a private key (certificates.<name>.privateKey).
 */
function where(err: unknown): string {
  const e = err as { message?: string; linePos?: Array<{ line: number; col: number }> };
  const at = e.linePos?.[0];
  const what = (e.message ?? '').split(' at line ')[0]!.split('\n')[0]!;
  return at === undefined ? '' : `: ${what} (line ${at.line}, column ${at.col})`;
}
