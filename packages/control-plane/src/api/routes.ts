/** GET /v1/routes and GET/PUT/DELETE /v1/routes/{route}. */
import type { FastifyPluginAsync } from 'fastify';
import { validateRoute } from '@lb/shared';
import { ApiError } from '../errors.js';
import type { ApiDeps } from './deps.js';
import { docs, writeAnswer } from './docs-schemas.js';
import { unwrapEnvelope } from './envelope.js';
import { noQuerySchema, paramsSchema, writeQuerySchema } from './schemas.js';
import { sendWriteResult, setVersionTag, writeRequestOf } from './write-request.js';

interface RouteParams {
  route: string;
}

function routeNotFound(name: string): ApiError {
  return new ApiError('LB_CP_NOT_FOUND', `route "${name}" does not exist`);
}

export const routeRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  const params = paramsSchema('route');
  const tags = ['routes'];

  app.get(
    '/v1/routes',
    { config: { access: 'viewer', docs: { response: { 200: docs.routes } } }, schema: { summary: 'Every route', tags, querystring: noQuerySchema } },
    async (_request, reply) => {
      const current = await deps.store.current();
      setVersionTag(reply, current.version);
      return { version: current.version, routes: current.config.routes };
    },
  );

  app.get<{ Params: RouteParams }>(
    '/v1/routes/:route',
    { config: { access: 'viewer', docs: { response: { 200: docs.routeAnswer } } }, schema: { summary: 'One route', tags, params, querystring: noQuerySchema } },
    async (request, reply) => {
      const { route } = request.params;
      const current = await deps.store.current();
      const found = current.config.routes[route];
      if (!Object.hasOwn(current.config.routes, route) || !found) throw routeNotFound(route);
      setVersionTag(reply, current.version);
      return { version: current.version, name: route, route: found };
    },
  );

  app.put<{ Params: RouteParams }>(
    '/v1/routes/:route',
    {
      config: { access: 'operator', docs: { ...docs.route, response: { 200: writeAnswer } } },
      schema: { summary: 'Create or replace a route', tags, params, querystring: writeQuerySchema },
    },
    async (request, reply) => {
      const { route } = request.params;
      const { body, version } = unwrapEnvelope(request.body, 'route', { name: route });
      const write = writeRequestOf(request, `PUT /v1/routes/${route}`, version !== undefined ? { bodyVersion: version } : {});
      // Structure first, against no pools, so a malformed body fails before any store round trip.
      const shape = validateRoute(body);
      if (!shape.ok) throw new ApiError('LB_CP_VALIDATION', 'the route is invalid; nothing was changed', shape.errors);
      const result = await deps.writer.write(write, (config) => {
        // Pool references are checked against the version being changed, with fields relative to the body.
        const validation = validateRoute(body, config.pools);
        if (!validation.ok) throw new ApiError('LB_CP_VALIDATION', 'the route is invalid; nothing was changed', validation.errors);
        config.routes[route] = validation.value;
        return config;
      });
      return sendWriteResult(reply, result, { name: route, route: result.config.routes[route] });
    },
  );

  app.delete<{ Params: RouteParams }>(
    '/v1/routes/:route',
    {
      config: { access: 'operator', docs: { response: { 200: writeAnswer } } },
      schema: { summary: 'Delete a route', tags, params, querystring: writeQuerySchema },
    },
    async (request, reply) => {
      const { route } = request.params;
      const write = writeRequestOf(request, `DELETE /v1/routes/${route}`);
      const result = await deps.writer.write(write, (config) => {
        if (!Object.hasOwn(config.routes, route)) throw routeNotFound(route);
        delete config.routes[route];
        return config;
      });
      return sendWriteResult(reply, result, { name: route });
    },
  );
};
