/** Liveness, readiness and metrics for orchestrators and Prometheus. */
import type { FastifyPluginAsync } from 'fastify';
import { ApiError, StoreUnavailableError } from '../errors.js';
import type { ApiDeps } from './deps.js';

export const opsRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  // Alive means the event loop answers; etcd being down must not get the process restarted.
  app.get('/healthz', async () => ({ status: 'ok' }));

  // Ready means writes and reads can succeed: etcd answers within its deadline.
  app.get('/readyz', async () => {
    try {
      await deps.store.ping();
    } catch (err) {
      if (err instanceof StoreUnavailableError) throw new ApiError('LB_CP_STORE_UNAVAILABLE', `not ready: ${err.message}`);
      throw err;
    }
    return { status: 'ready' };
  });

  app.get('/metrics', async (_request, reply) => {
    reply.type(deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });
};
