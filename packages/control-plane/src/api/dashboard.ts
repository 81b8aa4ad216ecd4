/**
 * The dashboard at /ui/: static files (../ui next to dist/) served with @fastify/static. They are
 * public, like /docs: they hold no data, and everything they show comes from the API with the
 * token the operator pastes into the page. Hidden from the OpenAPI document.
 */
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/** Where the dashboard's files are, from dist/api/ or src/api/ alike. */
export const DASHBOARD_ROOT = fileURLToPath(new URL('../../ui/', import.meta.url));

export async function registerDashboard(app: FastifyInstance): Promise<void> {
  await app.register(async (ui) => {
    ui.addHook('onRoute', (route) => {
      route.config = { ...(route.config ?? {}), access: 'public' };
    });
    // schemaHide (on by default) keeps its routes out of the OpenAPI document.
    await ui.register(fastifyStatic, { root: DASHBOARD_ROOT, prefix: '/ui/', index: ['index.html'], schemaHide: true });
    ui.get('/ui', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/ui/', 308));
  });
}
