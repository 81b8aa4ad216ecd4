/**
 * GET /v1/nodes: every data-plane node of every replica — this replica's as they are now, the
 * others' as they last published them (within their flush interval), from a watched copy of etcd,
 * not a read per call: connected ones, and disconnected ones (which may still serve from their
 * cache) with when they were last seen and the version they last acked, until removed here or by
 * retention.
 */
import type { FastifyPluginAsync } from 'fastify';
import { ApiError } from '../errors.js';
import type { ApiDeps } from './deps.js';
import { noQuerySchema, paramsSchema } from './schemas.js';

interface NodeParams {
  node: string;
}

export const nodeRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  const tags = ['nodes'];

  app.get(
    '/v1/nodes',
    { config: { access: 'viewer' }, schema: { summary: 'Data-plane nodes, connected and disconnected', tags, querystring: noQuerySchema } },
    async () => ({
      nodes: await deps.nodes.known(deps.heldNodes?.() ?? []),
    }),
  );

  app.delete<{ Params: NodeParams }>(
    '/v1/nodes/:node',
    { config: { access: 'operator' }, schema: { summary: 'Forget a disconnected node', tags, params: paramsSchema('node'), querystring: noQuerySchema } },
    async (request) => {
      const { node } = request.params;
      request.audit.message = `forget node ${node}`;
      // Held here but not published yet is connected too.
      const result = deps.heldNodes?.().some((n) => n.id === node) ? 'connected' : await deps.nodes.forget(node);
      if (result === 'connected')
        throw new ApiError('LB_CP_NODE_CONNECTED', `node "${node}" is connected; stop it first (a connected node would only reappear)`);
      if (result === 'unknown') throw new ApiError('LB_CP_NOT_FOUND', `node "${node}" is not known`);
      // The versions it ran may now be pruned.
      deps.onRetentionChange();
      return { id: node, forgotten: true };
    },
  );
};
