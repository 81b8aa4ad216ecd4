/** Liveness, readiness and metrics for orchestrators and Prometheus. */
import type { FastifyPluginAsync } from 'fastify';
import { ApiError, StoreUnavailableError } from '../errors.js';
import type { ApiDeps } from './deps.js';
import { noQuerySchema } from './schemas.js';

export const opsRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  const tags = ['ops'];

  // Alive means the event loop answers; etcd being down must not get the process restarted.
  app.get('/healthz', { config: { access: 'public' }, schema: { summary: 'Liveness', tags, querystring: noQuerySchema } }, async () => ({ status: 'ok' }));

  // Ready means writes and reads can succeed: etcd answers (store-reachability.ts: within a grace,
  // so a brief etcd restart does not pull every replica at once). Without a tracker, one ping per call.
  app.get('/readyz', { config: { access: 'public' }, schema: { summary: 'Readiness: etcd answers', tags, querystring: noQuerySchema } }, async () => {
    if (deps.readiness !== undefined) {
      const state = deps.readiness();
      if (!state.ready) throw new ApiError('LB_CP_STORE_UNAVAILABLE', `not ready: ${state.reason}`);
      return { status: 'ready' };
    }
    try {
      await deps.store.ping();
    } catch (err) {
      if (err instanceof StoreUnavailableError) throw new ApiError('LB_CP_STORE_UNAVAILABLE', `not ready: ${err.message}`);
      throw err;
    }
    return { status: 'ready' };
  });

  // Metrics hold no config, but names of pools and routes; open them to scrapers only by choice (--public-metrics).
  app.get(
    '/metrics',
    {
      config: { access: deps.publicMetrics ? 'public' : 'viewer', docs: { response: { 200: { type: 'string', description: 'Prometheus text format' } } } },
      schema: { summary: 'Prometheus metrics', tags },
    },
    async (_request, reply) => {
      reply.type(deps.metrics.registry.contentType);
      return deps.metrics.registry.metrics();
    },
  );
};
