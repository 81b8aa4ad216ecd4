/** PUT/PATCH/DELETE /v1/pools/{pool}/backends/{id}: one backend, keeping its place in the pool. */
import type { FastifyPluginAsync } from 'fastify';
import { validateBackend, validateBackendPatch, type Config, type Pool } from '@lb/shared';
import { ApiError } from '../errors.js';
import type { ApiDeps } from './deps.js';
import { poolNotFound } from './pools.js';
import { paramsSchema, writeQuerySchema } from './schemas.js';
import { sendWriteResult, setVersionTag, writeRequestOf } from './write-request.js';
import { registerBackend, registrationRoutes } from './registrations.js';

interface BackendParams {
  pool: string;
  id: string;
}

function poolOf(config: Config, name: string): Pool {
  const pool = config.pools[name];
  if (!Object.hasOwn(config.pools, name) || !pool) throw poolNotFound(name);
  return pool;
}

function backendNotFound(pool: string, id: string): ApiError {
  return new ApiError('LB_CP_NOT_FOUND', `backend "${id}" does not exist in pool "${pool}"`);
}

export const backendRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  const schema = { params: paramsSchema('pool', 'id'), querystring: writeQuerySchema };
  const backendIn = (config: Config, pool: string, id: string) => config.pools[pool]?.backends.find((b) => b.id === id);

  await app.register(registrationRoutes, deps);

  app.put<{ Params: BackendParams }>('/v1/pools/:pool/backends/:id', { schema }, async (request, reply) => {
    const { pool, id } = request.params;
    // With ttlSeconds the backend registers itself on a lease: not config, no new version.
    if (request.body !== null && typeof request.body === 'object' && Object.hasOwn(request.body, 'ttlSeconds')) return registerBackend(deps, request, reply);
    const write = writeRequestOf(request, `PUT /v1/pools/${pool}/backends/${id}`);
    const validation = validateBackend(request.body, id);
    if (!validation.ok) throw new ApiError('LB_CP_VALIDATION', 'the backend is invalid; nothing was changed', validation.errors);
    const result = await deps.writer.write(write, (config) => {
      const backends = poolOf(config, pool).backends;
      const at = backends.findIndex((b) => b.id === id);
      if (at >= 0) backends[at] = validation.value;
      else backends.push(validation.value);
      return config;
    });
    return sendWriteResult(reply, result, { pool, backend: backendIn(result.config, pool, id) });
  });

  app.patch<{ Params: BackendParams }>('/v1/pools/:pool/backends/:id', { schema }, async (request, reply) => {
    const { pool, id } = request.params;
    const write = writeRequestOf(request, `PATCH /v1/pools/${pool}/backends/${id}`);
    const validation = validateBackendPatch(request.body);
    if (!validation.ok) throw new ApiError('LB_CP_VALIDATION', 'the patch is invalid; nothing was changed', validation.errors);
    const patch = validation.value;
    // Renaming would silently break anything keyed by the id (health, metrics); delete and re-add instead.
    if (patch.id !== undefined && patch.id !== id) {
      throw new ApiError('LB_CP_VALIDATION', 'a backend cannot be renamed', [{ field: 'id', message: `does not match the id in the path ("${id}")` }]);
    }
    const result = await deps.writer.write(write, (config) => {
      const backend = poolOf(config, pool).backends.find((b) => b.id === id);
      if (!backend) throw backendNotFound(pool, id);
      Object.assign(backend, patch);
      return config;
    });
    return sendWriteResult(reply, result, { pool, backend: backendIn(result.config, pool, id) });
  });

  app.delete<{ Params: BackendParams }>('/v1/pools/:pool/backends/:id', { schema }, async (request, reply) => {
    const { pool, id } = request.params;
    const write = writeRequestOf(request, `DELETE /v1/pools/${pool}/backends/${id}`);
    // A self-registered backend (not in config) is deregistered: no version is created.
    const current = await deps.store.current();
    if (!backendIn(current.config, pool, id) && (await deps.health.registrations.get(pool, id))) {
      if (!write.dryRun) await deps.health.registrations.deregister(pool, id);
      setVersionTag(reply, current.version);
      return reply.send({ version: current.version, committed: false, ...(write.dryRun ? { dryRun: true } : {}), changes: [], pool, id, registered: false });
    }
    const result = await deps.writer.write(write, (config) => {
      const p = poolOf(config, pool);
      const at = p.backends.findIndex((b) => b.id === id);
      if (at < 0) throw backendNotFound(pool, id);
      p.backends.splice(at, 1);
      return config;
    });
    return sendWriteResult(reply, result, { pool, id });
  });
};
