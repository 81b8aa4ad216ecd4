/** GET /v1/pools and GET/PUT/DELETE /v1/pools/{pool}. */
import type { FastifyPluginAsync } from 'fastify';
import { validatePool, type Config, type FieldError } from '@lb/shared';
import { ApiError } from '../errors.js';
import type { ApiDeps } from './deps.js';
import { paramsSchema, writeQuerySchema } from './schemas.js';
import { sendWriteResult, setVersionTag, writeRequestOf } from './write-request.js';

interface PoolParams {
  pool: string;
}

export function poolNotFound(name: string): ApiError {
  return new ApiError('LB_CP_NOT_FOUND', `pool "${name}" does not exist`);
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

  app.get('/v1/pools', async (_request, reply) => {
    const current = await deps.store.current();
    setVersionTag(reply, current.version);
    return { version: current.version, pools: current.config.pools };
  });

  app.get<{ Params: PoolParams }>('/v1/pools/:pool', { schema: { params } }, async (request, reply) => {
    const { pool } = request.params;
    const current = await deps.store.current();
    const found = current.config.pools[pool];
    if (!Object.hasOwn(current.config.pools, pool) || !found) throw poolNotFound(pool);
    setVersionTag(reply, current.version);
    return { version: current.version, name: pool, pool: found };
  });

  app.put<{ Params: PoolParams }>('/v1/pools/:pool', { schema: { params, querystring: writeQuerySchema } }, async (request, reply) => {
    const { pool } = request.params;
    const write = writeRequestOf(request, `PUT /v1/pools/${pool}`);
    const validation = validatePool(request.body);
    if (!validation.ok) throw new ApiError('LB_CP_VALIDATION', 'the pool is invalid; nothing was changed', validation.errors);
    const result = await deps.writer.write(write, (config) => {
      config.pools[pool] = validation.value;
      return config;
    });
    return sendWriteResult(reply, result, { name: pool, pool: result.config.pools[pool] });
  });

  app.delete<{ Params: PoolParams }>('/v1/pools/:pool', { schema: { params, querystring: writeQuerySchema } }, async (request, reply) => {
    const { pool } = request.params;
    const write = writeRequestOf(request, `DELETE /v1/pools/${pool}`);
    const result = await deps.writer.write(write, (config) => {
      if (!Object.hasOwn(config.pools, pool)) throw poolNotFound(pool);
      const users = poolUsers(config, pool);
      if (users.length > 0) {
        const routes = [...new Set(users.map((u) => u.field.split('.')[1]))];
        throw new ApiError('LB_CP_POOL_IN_USE', `pool "${pool}" is used by route(s) ${routes.join(', ')}; change or delete them first`, users, { routes });
      }
      delete config.pools[pool];
      return config;
    });
    return sendWriteResult(reply, result, { name: pool });
  });
};
