/** GET /v1/pools and GET/PUT/PATCH/DELETE /v1/pools/{pool}. */
import type { FastifyPluginAsync } from 'fastify';
import { validatePool, type Config, type FieldError, type Pool } from '@lb/shared';
import { ApiError } from '../errors.js';
import type { ApiDeps } from './deps.js';
import { docs, writeAnswer } from './docs-schemas.js';
import { unwrapEnvelope } from './envelope.js';
import { applyMergePatch } from './merge-patch.js';
import { noQuerySchema, paramsSchema, writeQuerySchema } from './schemas.js';
import { sendWriteResult, setVersionTag, writeRequestOf } from './write-request.js';

interface PoolParams {
  pool: string;
}

export function poolNotFound(name: string): ApiError {
  return new ApiError('LB_CP_NOT_FOUND', `pool "${name}" does not exist`);
}

/** The pool named `name` in `config`, or 404. */
export function poolOf(config: Config, name: string): Pool {
  const pool = config.pools[name];
  if (!Object.hasOwn(config.pools, name) || !pool) throw poolNotFound(name);
  return pool;
}

/** Every place a route names the pool, as field errors an operator can act on. */
function poolUsers(config: Config, pool: string): FieldError[] {
  const users: FieldError[] = [];
  for (const [name, route] of Object.entries(config.routes)) {
    route.pools.forEach((p, i) => {
      if (p.pool === pool) users.push({ field: `routes.${name}.pools[${i}].pool`, message: `route "${name}" sends traffic to pool "${pool}"` });
    });
  }
  return users;
}

export const poolRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  const params = paramsSchema('pool');
  const tags = ['pools'];

  app.get(
    '/v1/pools',
    { config: { access: 'viewer', docs: { response: { 200: docs.pools } } }, schema: { summary: 'Every pool', tags, querystring: noQuerySchema } },
    async (_request, reply) => {
      const current = await deps.store.current();
      setVersionTag(reply, current.version);
      return { version: current.version, pools: current.config.pools };
    },
  );

  app.get<{ Params: PoolParams }>(
    '/v1/pools/:pool',
    { config: { access: 'viewer', docs: { response: { 200: docs.poolAnswer } } }, schema: { summary: 'One pool', tags, params, querystring: noQuerySchema } },
    async (request, reply) => {
      const { pool } = request.params;
      const current = await deps.store.current();
      setVersionTag(reply, current.version);
      return { version: current.version, name: pool, pool: poolOf(current.config, pool) };
    },
  );

  app.put<{ Params: PoolParams }>(
    '/v1/pools/:pool',
    {
      config: { access: 'operator', docs: { ...docs.pool, response: { 200: writeAnswer } } },
      schema: { summary: 'Create or replace a pool', tags, params, querystring: writeQuerySchema },
    },
    async (request, reply) => {
      const { pool } = request.params;
      const { body, version } = unwrapEnvelope(request.body, 'pool', { name: pool });
      const write = writeRequestOf(request, `PUT /v1/pools/${pool}`, version !== undefined ? { bodyVersion: version } : {});
      const validation = validatePool(body, '', { forWrite: true });
      if (!validation.ok) throw new ApiError('LB_CP_VALIDATION', 'the pool is invalid; nothing was changed', validation.errors);
      const result = await deps.writer.write(write, (config) => {
        config.pools[pool] = validation.value;
        return config;
      });
      return sendWriteResult(reply, result, { name: pool, pool: result.config.pools[pool] });
    },
  );

  // A merge patch changes some settings of a pool without restating its backends and the rest.
  app.patch<{ Params: PoolParams }>(
    '/v1/pools/:pool',
    {
      config: { access: 'operator', docs: { ...docs.poolPatch, response: { 200: writeAnswer } } },
      schema: { summary: 'Change some fields of a pool (JSON merge patch)', tags, params, querystring: writeQuerySchema },
    },
    async (request, reply) => {
      const { pool } = request.params;
      const write = writeRequestOf(request, `PATCH /v1/pools/${pool}`);
      const patch = request.body;
      if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) {
        throw new ApiError('LB_CP_VALIDATION', 'the patch is invalid; nothing was changed', [{ field: '(body)', message: 'must be a JSON object' }]);
      }
      const result = await deps.writer.write(write, (config) => {
        const validation = validatePool(applyMergePatch(poolOf(config, pool), patch), '', { forWrite: true });
        // Field names are relative to the pool, the document the patch applies to.
        if (!validation.ok) throw new ApiError('LB_CP_VALIDATION', 'the patched pool is invalid; nothing was changed', validation.errors);
        config.pools[pool] = validation.value;
        return config;
      });
      return sendWriteResult(reply, result, { name: pool, pool: result.config.pools[pool] });
    },
  );

  app.delete<{ Params: PoolParams }>(
    '/v1/pools/:pool',
    {
      config: { access: 'operator', docs: { response: { 200: writeAnswer } } },
      schema: { summary: 'Delete a pool no route uses', tags, params, querystring: writeQuerySchema },
    },
    async (request, reply) => {
      const { pool } = request.params;
      const write = writeRequestOf(request, `DELETE /v1/pools/${pool}`);
      const result = await deps.writer.write(write, (config) => {
        poolOf(config, pool);
        const users = poolUsers(config, pool);
        if (users.length > 0) {
          const routes = [...new Set(users.map((u) => u.field.split('.')[1]))];
          throw new ApiError('LB_CP_POOL_IN_USE', `pool "${pool}" is used by route(s) ${routes.join(', ')}; change or delete them first`, users, { routes });
        }
        delete config.pools[pool];
        return config;
      });
      return sendWriteResult(reply, result, { name: pool });
    },
  );
};
