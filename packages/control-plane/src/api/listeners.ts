/**
 * GET /v1/listeners and GET/PUT/DELETE /v1/listeners/{name}: client listeners every data plane
 * binds. One write opens (or closes) a port on every node; a node that cannot bind it NACKs the
 * version with the reason (GET /v1/nodes) and keeps serving the one before.
 */
import type { FastifyPluginAsync } from 'fastify';
import { validateListener, type Config, type Listener } from '@lb/shared';
import { ApiError } from '../errors.js';
import type { ApiDeps } from './deps.js';
import { docs, writeAnswer } from './docs-schemas.js';
import { unwrapEnvelope } from './envelope.js';
import { noQuerySchema, paramsSchema, writeQuerySchema } from './schemas.js';
import { sendWriteResult, setVersionTag, writeRequestOf } from './write-request.js';

interface ListenerParams {
  name: string;
}

function listenerNotFound(name: string): ApiError {
  return new ApiError('LB_CP_NOT_FOUND', `listener "${name}" does not exist`);
}

function listenerOf(config: Config, name: string): Listener {
  const listener = config.listeners?.[name];
  if (listener === undefined || !Object.hasOwn(config.listeners!, name)) throw listenerNotFound(name);
  return listener;
}

export const listenerRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  const params = paramsSchema('name');
  const tags = ['listeners'];

  app.get(
    '/v1/listeners',
    { config: { access: 'viewer', docs: { response: { 200: docs.listeners } } }, schema: { summary: 'Every listener', tags, querystring: noQuerySchema } },
    async (_request, reply) => {
      const current = await deps.store.current();
      setVersionTag(reply, current.version);
      return { version: current.version, listeners: current.config.listeners ?? {} };
    },
  );

  app.get<{ Params: ListenerParams }>(
    '/v1/listeners/:name',
    {
      config: { access: 'viewer', docs: { response: { 200: docs.listenerAnswer } } },
      schema: { summary: 'One listener', tags, params, querystring: noQuerySchema },
    },
    async (request, reply) => {
      const { name } = request.params;
      const current = await deps.store.current();
      setVersionTag(reply, current.version);
      return { version: current.version, name, listener: listenerOf(current.config, name) };
    },
  );

  app.put<{ Params: ListenerParams }>(
    '/v1/listeners/:name',
    {
      config: { access: 'operator', docs: { ...docs.listener, response: { 200: writeAnswer } } },
      schema: { summary: 'Create or replace a listener (every data plane binds it)', tags, params, querystring: writeQuerySchema },
    },
    async (request, reply) => {
      const { name } = request.params;
      const { body, version } = unwrapEnvelope(request.body, 'listener', { name });
      const write = writeRequestOf(request, `PUT /v1/listeners/${name}`, version !== undefined ? { bodyVersion: version } : {});
      const validation = validateListener(body);
      if (!validation.ok) throw new ApiError('LB_CP_VALIDATION', 'the listener is invalid; nothing was changed', validation.errors);
      // Certificate references and port clashes are checked on the merged config (fields relative to it).
      const result = await deps.writer.write(write, (config) => {
        config.listeners = { ...config.listeners, [name]: validation.value };
        return config;
      });
      return sendWriteResult(reply, result, { name, listener: result.config.listeners?.[name] });
    },
  );

  app.delete<{ Params: ListenerParams }>(
    '/v1/listeners/:name',
    {
      config: { access: 'operator', docs: { response: { 200: writeAnswer } } },
      schema: { summary: 'Delete a listener no route is limited to (every data plane closes it)', tags, params, querystring: writeQuerySchema },
    },
    async (request, reply) => {
      const { name } = request.params;
      const write = writeRequestOf(request, `DELETE /v1/listeners/${name}`);
      const result = await deps.writer.write(write, (config) => {
        listenerOf(config, name);
        const users: string[] = [];
        for (const [route, r] of Object.entries(config.routes)) {
          const at = r.listeners?.indexOf(name) ?? -1;
          if (at >= 0) users.push(`routes.${route}.listeners[${at}]`);
        }
        if (users.length > 0) {
          throw new ApiError(
            'LB_CP_LISTENER_IN_USE',
            `listener "${name}" is named by ${users.join(', ')}; change those routes first`,
            users.map((field) => ({ field, message: `limits the route to listener "${name}"` })),
            { usedBy: users },
          );
        }
        const { [name]: _gone, ...rest } = config.listeners!;
        if (Object.keys(rest).length === 0) delete config.listeners;
        else config.listeners = rest;
        return config;
      });
      return sendWriteResult(reply, result, { name });
    },
  );
};
