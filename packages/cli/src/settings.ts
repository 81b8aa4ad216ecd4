/**
 * Where lbctl finds its control plane and token, first match wins: flags (`--url`,
 * `--token-file`), then the environment (LB_URL, LB_TOKEN, LB_TOKEN_FILE), then a small YAML
 * config file (`--config`, LBCTL_CONFIG, or ~/.config/lbctl/config.yaml):
 *
 *   url: https://lb-control-plane.example:8080
 *   tokenFile: ~/.config/lbctl/token     # or token: lb_ci_…
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { CliError, EXIT } from './exit-codes.js';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

export interface GlobalOptions {
  url?: string;
  tokenFile?: string;
  config?: string;
}

export interface Settings {
  url: string;
  /** Undefined: requests go without a token (and the control plane will say 401). */
  token?: string;
}

interface ConfigFile {
  url?: string;
  token?: string;
  tokenFile?: string;
}

function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? join(homedir(), path.slice(1)) : path;
}

function readConfigFile(path: string, explicit: boolean): ConfigFile {
  let text: string;
  try {
    text = readFileSync(expandHome(path), 'utf8');
  } catch (err) {
    // The default file is optional; a file someone named must exist.
    if (!explicit && (err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new CliError(EXIT.USAGE, `cannot read the config file ${path}: ${(err as Error).message}`);
  }
  const parsed: unknown = parseYaml(text);
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new CliError(EXIT.USAGE, `${path} must be a YAML mapping with url and token or tokenFile`);
  const unknown = Object.keys(parsed).filter((k) => !['url', 'token', 'tokenFile'].includes(k));
  if (unknown.length > 0) throw new CliError(EXIT.USAGE, `${path}: unknown field(s) ${unknown.join(', ')} (it takes url, token, tokenFile)`);
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value !== 'string' || value === '') throw new CliError(EXIT.USAGE, `${path}: ${key} must be a non-empty string`);
  }
  return parsed as ConfigFile;
}

function readTokenFile(path: string, from: string): string {
  try {
    const token = readFileSync(expandHome(path), 'utf8').trim();
    if (token === '') throw new CliError(EXIT.USAGE, `the token file ${path} (${from}) is empty`);
    return token;
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(EXIT.USAGE, `cannot read the token file ${path} (${from}): ${(err as Error).message}`);
  }
}

function checkUrl(url: string, from: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(EXIT.USAGE, `${from} "${url}" is not a URL such as http://127.0.0.1:8080`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new CliError(EXIT.USAGE, `${from} "${url}" must be http:// or https://`);
  return url.replace(/\/+$/, '');
}

export function resolveSettings(options: GlobalOptions, env: NodeJS.ProcessEnv = process.env): Settings {
  const configPath = options.config ?? env.LBCTL_CONFIG;
  const file = readConfigFile(configPath ?? '~/.config/lbctl/config.yaml', configPath !== undefined);
  const url = options.url
    ? checkUrl(options.url, '--url')
    : env.LB_URL
      ? checkUrl(env.LB_URL, 'LB_URL')
      : file.url
        ? checkUrl(file.url, 'url in the config file')
        : DEFAULT_URL;
  let token: string | undefined;
  if (options.tokenFile) token = readTokenFile(options.tokenFile, '--token-file');
  else if (env.LB_TOKEN) token = env.LB_TOKEN.trim();
  else if (env.LB_TOKEN_FILE) token = readTokenFile(env.LB_TOKEN_FILE, 'LB_TOKEN_FILE');
  else if (file.token) token = file.token;
  else if (file.tokenFile) token = readTokenFile(file.tokenFile, 'tokenFile in the config file');
  return { url, ...(token !== undefined ? { token } : {}) };
}
