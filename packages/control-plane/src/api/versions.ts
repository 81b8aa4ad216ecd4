/** Version history: list, read, diff, roll back. Versions are immutable; rollback adds one. */
import type { FastifyPluginAsync } from 'fastify';
import { diffConfigs, emptyConfig, type Config, type ConfigVersionRecord } from '@lb/shared';
import { ApiError } from '../errors.js';
import type { ConfigStore } from '../store/config-store.js';
import type { ApiDeps } from './deps.js';
import { writeAnswer } from './docs-schemas.js';
import { diffQuerySchema, listVersionsQuerySchema, noQuerySchema, paramsSchema, writeQuerySchema } from './schemas.js';
import { sendWriteResult, writeRequestOf } from './write-request.js';

interface VersionParams {
  n: number;
}

async function recordOf(store: ConfigStore, n: number): Promise<ConfigVersionRecord> {
  const record = await store.getVersion(n);
  if (record) return record;
  if (n === 0) throw new ApiError('LB_CP_NOT_FOUND', 'version 0 is the empty config before the first write; it has no record');
  // Versions are numbered without gaps, so a missing one at or below the current was pruned.
  if (n <= (await store.currentVersion())) {
    throw new ApiError('LB_CP_VERSION_PRUNED', `version ${n} was pruned: the history keeps the newest versions (--keep-versions) and those nodes still run`);
  }
  throw new ApiError('LB_CP_NOT_FOUND', `version ${n} does not exist`);
}

/** Version 0 diffs as the empty config, so `?against=0` shows a version in full. */
async function configOf(store: ConfigStore, n: number): Promise<Config> {
  return n === 0 ? emptyConfig() : (await recordOf(store, n)).config;
}

export const versionRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  const params = paramsSchema('n');
  const tags = ['versions'];

  // Newest first. `next` is the `before` cursor of the following page, absent on the last page;
  // a cursor stays valid while new versions are added because versions never change.
  app.get<{ Querystring: { limit: number; before?: number } }>(
    '/v1/versions',
    { config: { access: 'viewer' }, schema: { summary: 'The history, newest first', tags, querystring: listVersionsQuerySchema } },
    async (request) => {
      const { limit, before } = request.query;
      const found = await deps.store.listVersions({ limit: limit + 1, ...(before !== undefined ? { before } : {}) });
      const page = found.slice(0, limit);
      const last = page[page.length - 1];
      return found.length > limit && last ? { versions: page, next: last.version } : { versions: page };
    },
  );

  app.get<{ Params: VersionParams }>(
    '/v1/versions/:n',
    { config: { access: 'viewer' }, schema: { summary: 'One version with its whole config', tags, params, querystring: noQuerySchema } },
    async (request) => recordOf(deps.store, request.params.n),
  );

  // Without `against`, the diff is against the version's parent: "what did this version change".
  app.get<{ Params: VersionParams; Querystring: { against?: number } }>(
    '/v1/versions/:n/diff',
    { config: { access: 'viewer' }, schema: { summary: 'The structured diff between two versions', tags, params, querystring: diffQuerySchema } },
    async (request) => {
      const { n } = request.params;
      const to = n === 0 ? undefined : await recordOf(deps.store, n);
      const against = request.query.against ?? to?.parent ?? 0;
      const from = await configOf(deps.store, against);
      return { from: against, to: n, changes: diffConfigs(from, to?.config ?? emptyConfig()) };
    },
  );

  app.post<{ Params: VersionParams }>(
    '/v1/versions/:n/rollback',
    {
      config: { access: 'operator', docs: { response: { 200: writeAnswer } } },
      schema: { summary: "A new version whose config equals version n's", tags, params, querystring: writeQuerySchema },
    },
    async (request, reply) => {
      const { n } = request.params;
      const write = writeRequestOf(request, `rollback to ${n}`);
      const target = await recordOf(deps.store, n);
      // Content equal to n's, as a new version on top: history is never rewritten. A rollback to
      // content that is already current commits nothing, like any other no-op write.
      const result = await deps.writer.write({ ...write, rollbackOf: n }, () => target.config);
      return sendWriteResult(reply, result, { rollbackOf: n });
    },
  );
};
