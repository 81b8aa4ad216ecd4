/**
 * Self-registering backends: `PUT /v1/pools/{pool}/backends/{id}` with `ttlSeconds` binds the
 * backend to an etcd lease; `POST .../keepalive` renews it; DELETE (in backends.ts) removes it.
 * A registration is not config: it creates no version (the answer carries the current one with
 * `committed: false`), is absent from history and rollbacks, and is merged into the snapshots the
 * data planes get. It cannot shadow a configured backend: same id or address → 400.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { validateBackendRegistration } from '@lb/shared';
import { ApiError } from '../errors.js';
import type { ApiDeps } from './deps.js';
import { poolNotFound } from './pools.js';
import { paramsSchema, writeQuerySchema } from './schemas.js';
import { setVersionTag, writeRequestOf } from './write-request.js';

interface BackendParams {
  pool: string;
  id: string;
}

export async function registerBackend(deps: ApiDeps, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const { pool, id } = request.params as BackendParams;
  const write = writeRequestOf(request, `PUT /v1/pools/${pool}/backends/${id}`);
  const validation = validateBackendRegistration(request.body, id);
  if (!validation.ok) throw new ApiError('LB_CP_VALIDATION', 'the registration is invalid; nothing was changed', validation.errors);
  const { backend, ttlSeconds } = validation.value;
  const current = await deps.store.current();
  const config = current.config.pools[pool];
  if (!Object.hasOwn(current.config.pools, pool) || config === undefined) throw poolNotFound(pool);
  if (config.backends.some((b) => b.id === id)) {
    throw new ApiError('LB_CP_VALIDATION', 'a configured backend cannot be re-registered with a TTL', [
      { field: 'ttlSeconds', message: `backend "${id}" is part of the config of pool "${pool}"; PUT it without ttlSeconds, or DELETE it first` },
    ]);
  }
  const owner = config.backends.find((b) => b.address.toLowerCase() === backend.address.toLowerCase());
  if (owner)
    throw new ApiError('LB_CP_VALIDATION', 'the registration is invalid; nothing was changed', [
      { field: 'address', message: `address already used by backend "${owner.id}" in this pool` },
    ]);
  setVersionTag(reply, current.version);
  reply.request.audit.version = current.version;
  reply.request.audit.committed = false;
  if (write.dryRun) return reply.send({ version: current.version, committed: false, dryRun: true, changes: [], pool, backend, ttlSeconds });
  const registration = await deps.health.registrations.register(pool, backend, ttlSeconds);
  return reply.send({
    version: current.version,
    committed: false,
    changes: [],
    pool,
    backend: registration.backend,
    ttlSeconds,
    registeredAt: registration.registeredAt,
  });
}

export const registrationRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  app.post<{ Params: BackendParams }>(
    '/v1/pools/:pool/backends/:id/keepalive',
    {
      config: { access: 'operator' },
      schema: { summary: "Renew a self-registered backend's lease", tags: ['backends'], params: paramsSchema('pool', 'id'), querystring: writeQuerySchema },
    },
    async (request) => {
      const { pool, id } = request.params;
      const registration = await deps.health.registrations.keepalive(pool, id);
      if (!registration)
        throw new ApiError('LB_CP_NOT_FOUND', `backend "${id}" is not registered in pool "${pool}" (its lease may have expired: PUT it again with ttlSeconds)`);
      return { pool, id, ttlSeconds: registration.ttlSeconds, registeredAt: registration.registeredAt };
    },
  );
};
