/**
 * A pool's backends: GET/PUT /v1/pools/{pool}/backends (the whole list) and GET/PUT/PATCH/DELETE
 * /v1/pools/{pool}/backends/{id} (one backend, keeping its place in the pool).
 */
import type { FastifyPluginAsync } from 'fastify';
import { validateBackend, validateBackendPatch, validatePool, type Config, type FieldError } from '@lb/shared';
import { ApiError } from '../errors.js';
import type { ApiDeps } from './deps.js';
import { docs, writeAnswer } from './docs-schemas.js';
import { unwrapEnvelope } from './envelope.js';
import { poolOf } from './pools.js';
import { registerBackend, registrationRoutes } from './registrations.js';
import { noQuerySchema, paramsSchema, writeQuerySchema } from './schemas.js';
import { sendWriteResult, setVersionTag, writeRequestOf } from './write-request.js';

interface PoolParams {
  pool: string;
}

interface BackendParams {
  pool: string;
  id: string;
}

function backendNotFound(pool: string, id: string): ApiError {
  return new ApiError('LB_CP_NOT_FOUND', `backend "${id}" does not exist in pool "${pool}"`);
}

const backendIn = (config: Config, pool: string, id: string) => config.pools[pool]?.backends.find((b) => b.id === id);

function hasMember(body: unknown, name: string): boolean {
  return body !== null && typeof body === 'object' && Object.hasOwn(body, name);
}

export const backendRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  const one = paramsSchema('pool', 'id');
  const list = paramsSchema('pool');
  const tags = ['backends'];

  await app.register(registrationRoutes, deps);

  app.get<{ Params: PoolParams }>(
    '/v1/pools/:pool/backends',
    {
      config: { access: 'viewer', docs: { response: { 200: docs.backendsAnswer } } },
      schema: { summary: "A pool's backends", tags, params: list, querystring: noQuerySchema },
    },
    async (request, reply) => {
      const { pool } = request.params;
      const current = await deps.store.current();
      setVersionTag(reply, current.version);
      return { version: current.version, pool, backends: poolOf(current.config, pool).backends };
    },
  );

  // The whole list at once: what a deploy script or a service registry knows, in one version.
  app.put<{ Params: PoolParams }>(
    '/v1/pools/:pool/backends',
    {
      config: { access: 'operator', docs: { ...docs.backends, response: { 200: writeAnswer } } },
      schema: { summary: "Replace a pool's backend list", tags, params: list, querystring: writeQuerySchema },
    },
    async (request, reply) => {
      const { pool } = request.params;
      const { body, version } = unwrapEnvelope(request.body, 'backends', { pool });
      const write = writeRequestOf(request, `PUT /v1/pools/${pool}/backends`, version !== undefined ? { bodyVersion: version } : {});
      if (!Array.isArray(body))
        throw new ApiError('LB_CP_VALIDATION', 'the backend list is invalid; nothing was changed', [
          { field: '(body)', message: 'must be a JSON array of backends' },
        ]);
      const result = await deps.writer.write(write, (config) => {
        const validation = validatePool({ ...poolOf(config, pool), backends: body });
        if (!validation.ok) {
          // Relative to the list sent: `[0].weight`, not `backends[0].weight`.
          const errors: FieldError[] = validation.errors.map((e) => ({ ...e, field: e.field.replace(/^backends/, '') || '(body)' }));
          throw new ApiError('LB_CP_VALIDATION', 'the backend list is invalid; nothing was changed', errors);
        }
        config.pools[pool] = validation.value;
        return config;
      });
      return sendWriteResult(reply, result, { pool, backends: result.config.pools[pool]?.backends });
    },
  );

  app.get<{ Params: BackendParams }>(
    '/v1/pools/:pool/backends/:id',
    {
      config: { access: 'viewer', docs: { response: { 200: docs.backendAnswer } } },
      schema: { summary: 'One backend', tags, params: one, querystring: noQuerySchema },
    },
    async (request, reply) => {
      const { pool, id } = request.params;
      const current = await deps.store.current();
      const backend = poolOf(current.config, pool).backends.find((b) => b.id === id);
      if (!backend) throw backendNotFound(pool, id);
      setVersionTag(reply, current.version);
      return { version: current.version, pool, backend };
    },
  );

  app.put<{ Params: BackendParams }>(
    '/v1/pools/:pool/backends/:id',
    {
      config: { access: 'operator', docs: { ...docs.backend, response: { 200: writeAnswer } } },
      schema: { summary: 'Create or replace one backend (or self-register it with ttlSeconds)', tags, params: one, querystring: writeQuerySchema },
    },
    async (request, reply) => {
      const { pool, id } = request.params;
      // With ttlSeconds the backend registers itself on a lease: not config, no new version.
      if (hasMember(request.body, 'ttlSeconds')) return registerBackend(deps, request, reply);
      const { body, version } = unwrapEnvelope(request.body, 'backend', { pool });
      const write = writeRequestOf(request, `PUT /v1/pools/${pool}/backends/${id}`, version !== undefined ? { bodyVersion: version } : {});
      const validation = validateBackend(body, id);
      if (!validation.ok) throw new ApiError('LB_CP_VALIDATION', 'the backend is invalid; nothing was changed', validation.errors);
      const result = await deps.writer.write(write, (config) => {
        const backends = poolOf(config, pool).backends;
        const at = backends.findIndex((b) => b.id === id);
        if (at >= 0) backends[at] = validation.value;
        else backends.push(validation.value);
        return config;
      });
      return sendWriteResult(reply, result, { pool, backend: backendIn(result.config, pool, id) });
    },
  );

  app.patch<{ Params: BackendParams }>(
    '/v1/pools/:pool/backends/:id',
    {
      config: { access: 'operator', docs: { ...docs.backendPatch, response: { 200: writeAnswer } } },
      schema: { summary: 'Change some fields of one backend (e.g. {"state":"draining"})', tags, params: one, querystring: writeQuerySchema },
    },
    async (request, reply) => {
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
    },
  );

  app.delete<{ Params: BackendParams }>(
    '/v1/pools/:pool/backends/:id',
    {
      config: { access: 'operator', docs: { response: { 200: writeAnswer } } },
      schema: { summary: 'Remove one backend (or deregister a self-registered one)', tags, params: one, querystring: writeQuerySchema },
    },
    async (request, reply) => {
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
    },
  );
};
