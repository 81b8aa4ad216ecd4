/** GET/PUT /v1/config: the whole config, replaced declaratively. PUT takes what GET answers. */
import type { FastifyPluginAsync } from 'fastify';
import { validateConfig } from '@lb/shared';
import { ApiError } from '../errors.js';
import type { ApiDeps } from './deps.js';
import { docs, writeAnswer } from './docs-schemas.js';
import { unwrapEnvelope } from './envelope.js';
import { withKeys } from './key-upload.js';
import { takeInlineKeys } from '../tls/inline-keys.js';
import { noQuerySchema, writeQuerySchema } from './schemas.js';
import { sendWriteResult, setVersionTag, writeRequestOf } from './write-request.js';

export const configRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  app.get(
    '/v1/config',
    {
      config: { access: 'viewer', docs: { response: { 200: docs.configAnswer } } },
      schema: { summary: 'The current config and its version', tags: ['config'], querystring: noQuerySchema },
    },
    async (_request, reply) => {
      const current = await deps.store.current();
      setVersionTag(reply, current.version);
      return { version: current.version, config: current.config };
    },
  );

  app.put(
    '/v1/config',
    {
      config: { access: 'operator', docs: { ...docs.config, response: { 200: writeAnswer } } },
      schema: { summary: 'Replace the whole config (one new version)', tags: ['config'], querystring: writeQuerySchema },
    },
    async (request, reply) => {
      const { body, version } = unwrapEnvelope(request.body, 'config');
      const write = writeRequestOf(request, 'PUT /v1/config', version !== undefined ? { bodyVersion: version } : {});
      // certificates.<name>.privateKey is write-only: taken out here, stored sealed, never part of a version.
      const inline = takeInlineKeys(body);
      const validation = validateConfig(inline.body, '', { forWrite: true });
      const errors = [...(validation.ok ? [] : validation.errors), ...inline.errors];
      if (!validation.ok || errors.length > 0) throw new ApiError('LB_CP_VALIDATION', 'the config is invalid; nothing was changed', errors);
      const result = await deps.writer.write(await withKeys(deps, write, inline.keys), () => validation.value);
      return sendWriteResult(reply, result, { config: result.config });
    },
  );
};
