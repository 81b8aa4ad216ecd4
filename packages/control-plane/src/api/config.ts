/** GET/PUT /v1/config: the whole config, replaced declaratively. */
import type { FastifyPluginAsync } from 'fastify';
import { validateConfig } from '@lb/shared';
import { ApiError } from '../errors.js';
import type { ApiDeps } from './deps.js';
import { writeQuerySchema } from './schemas.js';
import { sendWriteResult, setVersionTag, writeRequestOf } from './write-request.js';

export const configRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  app.get('/v1/config', async (_request, reply) => {
    const current = await deps.store.current();
    setVersionTag(reply, current.version);
    return { version: current.version, config: current.config };
  });

  app.put('/v1/config', { schema: { querystring: writeQuerySchema } }, async (request, reply) => {
    const write = writeRequestOf(request, 'PUT /v1/config');
    const validation = validateConfig(request.body);
    if (!validation.ok) throw new ApiError('LB_CP_VALIDATION', 'the config is invalid; nothing was changed', validation.errors);
    const result = await deps.writer.write(write, () => validation.value);
    return sendWriteResult(reply, result, { config: result.config });
  });
};
