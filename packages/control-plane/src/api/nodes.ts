/** GET /v1/nodes: every DP node connected to any replica, read from etcd (not this replica's memory). */
import type { FastifyPluginAsync } from 'fastify';
import type { ApiDeps } from './deps.js';

export const nodeRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  app.get('/v1/nodes', async () => ({ nodes: await deps.nodes.list() }));
};
