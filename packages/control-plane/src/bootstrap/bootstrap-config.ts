/**
 * `--bootstrap-config lb.yaml`: the config a fresh install starts with (first installs, Kubernetes
 * ConfigMaps). Read and validated at start, so a bad file stops the process with the field at fault
 * (exit 2); committed as version 1 only when etcd holds no version yet, so restarts and other
 * replicas never overwrite what operators changed since. YAML or JSON, the API's schema: a bare
 * config, or what `GET /v1/config` answers (`{version, config}`). Certificates may carry their
 * `privateKey` (as in PUT /v1/config): it is stored sealed before version 1 is committed.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { describeParseError, FlagError, validateConfig, type Config, type Logger } from '@lb/shared';
import { unwrapEnvelope } from '../api/envelope.js';
import { ApiError } from '../errors.js';
import type { CheckedKey, KeyVault } from '../secrets/key-vault.js';
import { takeInlineKeys } from '../tls/inline-keys.js';
import type { ConfigWriter } from '../versioning/config-writer.js';

export const BOOTSTRAP_CONFIG_ACTOR = 'bootstrap-config';

export interface BootstrapConfig {
  config: Config;
  /** Private keys the file carried (certificates.<name>.privateKey), checked against their certificates. */
  keys: CheckedKey[];
}

/** The file's config, validated. Throws FlagError naming the file and every bad field. */
export function readBootstrapConfig(path: string): BootstrapConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new FlagError(`--bootstrap-config ${path}: cannot read it: ${(err as Error).message}`);
  }
  let document: unknown;
  try {
    // YAML 1.2 is a superset of JSON: one parser reads both.
    document = parseYaml(text);
  } catch (err) {
    throw new FlagError(`--bootstrap-config ${path} is neither YAML nor JSON: ${describeParseError(err)}`);
  }
  let body: unknown;
  try {
    body = unwrapEnvelope(document, 'config').body;
  } catch (err) {
    throw new FlagError(`--bootstrap-config ${path}: ${(err as ApiError).errors?.map((e) => `${e.field} ${e.message}`).join('; ')}`);
  }
  const inline = takeInlineKeys(body);
  const validation = validateConfig(inline.body, '', { forWrite: true });
  const errors = [...(validation.ok ? [] : validation.errors), ...inline.errors];
  if (!validation.ok || errors.length > 0)
    throw new FlagError(`--bootstrap-config ${path} is not a valid config:\n${errors.map((e) => `  ${e.field}: ${e.message}`).join('\n')}`);
  return { config: validation.value, keys: inline.keys };
}

export interface SeedOptions {
  writer: ConfigWriter;
  config: Config;
  /** Stored before the config is committed. */
  keys?: readonly CheckedKey[];
  vault?: KeyVault;
  path: string;
  logger: Logger;
  isStopped: () => boolean;
  retryDelayMs?: number;
}

/** Commits `config` as the first version unless one exists; retries while etcd is unreachable. */
export async function seedEmptyStore(options: SeedOptions): Promise<void> {
  const { writer, config, path, logger } = options;
  while (!options.isStopped()) {
    try {
      for (const key of options.keys ?? []) await options.vault!.put(key);
      const result = await writer.write(
        {
          precondition: { versions: [0] },
          dryRun: false,
          actor: BOOTSTRAP_CONFIG_ACTOR,
          source: `file:${path}`,
          requestId: randomUUID(),
          message: `bootstrap config from ${path}`,
        },
        () => config,
      );
      logger.info({ version: result.version, path }, 'seeded the empty store from --bootstrap-config');
      return;
    } catch (err) {
      if (err instanceof ApiError && err.code === 'LB_CP_STALE_VERSION') {
        logger.info({ path, current: err.extra?.currentVersion }, 'etcd already holds a config; --bootstrap-config is not applied');
        return;
      }
      if (err instanceof ApiError && err.code === 'LB_CP_VALIDATION') {
        // Rules the file alone could not be checked against (a private key that is not stored): retrying cannot help.
        logger.error({ path, errors: err.errors }, '--bootstrap-config cannot be committed; etcd stays empty');
        return;
      }
      logger.warn({ err: (err as Error).message }, 'cannot seed the store from --bootstrap-config yet; retrying');
      await new Promise((resolve) => setTimeout(resolve, options.retryDelayMs ?? 1_000));
    }
  }
}
