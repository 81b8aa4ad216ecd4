/**
 * API tokens: POST /v1/tokens answers the secret once (only its scrypt hash is stored), GET lists
 * them without secrets, DELETE revokes one at once (on this replica before the answer, on every
 * other within its etcd watch's latency). Admin only.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { FieldError } from '@lb/shared';
import { NAME_PATTERN } from '@lb/shared';
import { BOOTSTRAP_ACTOR } from '../auth/authenticator.js';
import { ROLES, isRole } from '../auth/roles.js';
import { hashSecret, newSecret } from '../auth/token-secret.js';
import { tokenSummary, type TokenRecord } from '../auth/token-store.js';
import { ApiError } from '../errors.js';
import type { ApiDeps } from './deps.js';
import { noQuerySchema, paramsSchema } from './schemas.js';

interface TokenParams {
  name: string;
}

const NAME_RE = new RegExp(NAME_PATTERN);
const CREATE_FIELDS = ['name', 'role', 'expiresAt'];

const tokenSummarySchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    role: { enum: [...ROLES] },
    createdAt: { type: 'string', format: 'date-time' },
    createdBy: { type: 'string' },
    expiresAt: { type: 'string', format: 'date-time' },
  },
} as const;

/** Checks the body of POST /v1/tokens; every problem is reported. */
function validateCreate(body: unknown, now: Date): { name: string; role: (typeof ROLES)[number]; expiresAt?: string } {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ApiError('LB_CP_VALIDATION', 'the token is invalid; nothing was created', [{ field: '(body)', message: 'must be a JSON object' }]);
  }
  const input = body as Record<string, unknown>;
  const errors: FieldError[] = [];
  for (const key of Object.keys(input)) if (!CREATE_FIELDS.includes(key)) errors.push({ field: key, message: 'unknown field' });
  const { name, role, expiresAt } = input;
  if (typeof name !== 'string' || !NAME_RE.test(name))
    errors.push({ field: 'name', message: 'is required: a name such as ci-deploy ([a-z0-9][a-z0-9-]{0,62})' });
  else if (name === BOOTSTRAP_ACTOR) errors.push({ field: 'name', message: `"${BOOTSTRAP_ACTOR}" is reserved for the --admin-token-file secret` });
  if (!isRole(role)) errors.push({ field: 'role', message: `is required: one of ${ROLES.join(', ')}` });
  let expires: string | undefined;
  if (expiresAt !== undefined) {
    const at = typeof expiresAt === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(expiresAt) ? Date.parse(expiresAt) : Number.NaN;
    if (Number.isNaN(at)) errors.push({ field: 'expiresAt', message: 'must be an ISO 8601 time such as 2027-01-31T00:00:00Z' });
    else if (at <= now.getTime()) errors.push({ field: 'expiresAt', message: 'must be in the future' });
    else expires = new Date(at).toISOString();
  }
  if (errors.length > 0) throw new ApiError('LB_CP_VALIDATION', 'the token is invalid; nothing was created', errors);
  return { name: name as string, role: role as (typeof ROLES)[number], ...(expires !== undefined ? { expiresAt: expires } : {}) };
}

export const tokenRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  const tags = ['tokens'];

  app.post(
    '/v1/tokens',
    {
      config: {
        access: 'admin',
        docs: {
          body: {
            type: 'object',
            required: ['name', 'role'],
            properties: {
              name: { type: 'string', pattern: NAME_PATTERN },
              role: { enum: [...ROLES] },
              expiresAt: { type: 'string', format: 'date-time', description: 'absent: never expires' },
            },
          },
          response: {
            201: {
              ...tokenSummarySchema,
              properties: { ...tokenSummarySchema.properties, secret: { type: 'string', description: 'shown only in this answer' } },
            },
          },
        },
      },
      schema: { summary: 'Create a token; the answer holds its secret, shown only this once', tags, querystring: noQuerySchema },
    },
    async (request, reply) => {
      const { name, role, expiresAt } = validateCreate(request.body, new Date());
      request.audit.message = `create token ${name} (${role})`;
      const secret = newSecret(name);
      const record: TokenRecord = {
        name,
        role,
        createdAt: new Date().toISOString(),
        createdBy: request.principal?.name ?? 'anonymous',
        ...(expiresAt !== undefined ? { expiresAt } : {}),
        hash: await hashSecret(secret),
      };
      if (!(await deps.tokens.create(record))) throw new ApiError('LB_CP_TOKEN_EXISTS', `a token named "${name}" exists; delete it first or pick another name`);
      reply.code(201).header('cache-control', 'no-store');
      return { ...tokenSummary(record), secret };
    },
  );

  app.get(
    '/v1/tokens',
    {
      config: { access: 'admin', docs: { response: { 200: { type: 'object', properties: { tokens: { type: 'array', items: tokenSummarySchema } } } } } },
      schema: { summary: 'Every token, without secrets', tags, querystring: noQuerySchema },
    },
    async () => ({ tokens: (await deps.tokens.list()).map(tokenSummary) }),
  );

  app.delete<{ Params: TokenParams }>(
    '/v1/tokens/:name',
    { config: { access: 'admin' }, schema: { summary: 'Revoke a token at once', tags, params: paramsSchema('name'), querystring: noQuerySchema } },
    async (request) => {
      const { name } = request.params;
      request.audit.message = `revoke token ${name}`;
      if (!(await deps.tokens.delete(name))) throw new ApiError('LB_CP_NOT_FOUND', `no token is named "${name}"`);
      return { name, revoked: true };
    },
  );
};
