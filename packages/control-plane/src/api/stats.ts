/**
 * GET /v1/stats: the traffic the data planes held by this replica reported in their latest window
 * (stats/traffic-stats.ts), per node, route, pool and backend. From memory: no etcd read. Nodes
 * streaming to another replica are in that replica's answer.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { ApiDeps } from './deps.js';
import { noQuerySchema } from './schemas.js';

export const statsRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  app.get(
    '/v1/stats',
    {
      config: { access: 'viewer' },
      schema: {
        summary: "Traffic per node, route, pool and backend over the nodes' latest report windows",
        tags: ['stats'],
        querystring: noQuerySchema,
      },
    },
    async () => deps.traffic.view(),
  );
};
