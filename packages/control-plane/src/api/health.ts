/**
 * GET /v1/pools/{pool}/health: per backend of the pool (configured and self-registered), the
 * status the health-check leader recorded, when it last changed, the last probe, the current run
 * of equal results, and the ejections data planes reported. Reads etcd, so any replica answers
 * the same. Health is not config: the answer carries the health revision, not a config version.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { ApiDeps } from './deps.js';
import { poolNotFound } from './pools.js';
import { noQuerySchema, paramsSchema } from './schemas.js';

interface PoolParams {
  pool: string;
}

export const healthRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  const schema = { summary: "Health of a pool's backends", tags: ['health'], params: paramsSchema('pool'), querystring: noQuerySchema };
  app.get<{ Params: PoolParams }>('/v1/pools/:pool/health', { config: { access: 'viewer' }, schema }, async (request) => {
    const { pool } = request.params;
    const current = await deps.store.current();
    const config = current.config.pools[pool];
    if (!Object.hasOwn(current.config.pools, pool) || config === undefined) throw poolNotFound(pool);
    const [health, registrations, ejections] = await Promise.all([
      deps.health.store.list(pool),
      deps.health.registrations.list(pool),
      deps.health.ejections.list(pool),
    ]);
    const records = new Map(health.records.map((r) => [r.backend, r]));
    const members = [
      ...config.backends.map((b) => ({ backend: b, registered: false, ttlSeconds: undefined as number | undefined })),
      ...registrations
        .filter((r) => !config.backends.some((b) => b.id === r.backend.id))
        .map((r) => ({ backend: r.backend, registered: true, ttlSeconds: r.ttlSeconds })),
    ];
    return {
      pool,
      revision: health.revision,
      checked: config.healthCheck !== undefined,
      backends: members.map(({ backend, registered, ttlSeconds }) => {
        const record = records.get(backend.id);
        return {
          id: backend.id,
          address: backend.address,
          state: backend.state,
          registered,
          ...(ttlSeconds !== undefined ? { ttlSeconds } : {}),
          status: record?.status ?? 'unknown',
          since: record?.since ?? null,
          lastProbe: record?.lastProbe ?? null,
          consecutive: record?.consecutive ?? 0,
          ejections: ejections.get(backend.id) ?? [],
        };
      }),
    };
  });
};
