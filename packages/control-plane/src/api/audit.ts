/** GET /v1/audit: writes and refused attempts, newest first, filtered by actor, kind and time. Admin only. */
import type { FastifyPluginAsync } from 'fastify';
import type { AuditKind, AuditQuery } from '../audit/audit-log.js';
import type { ApiDeps } from './deps.js';
import { auditQuerySchema } from './schemas.js';

interface AuditQueryString {
  actor?: string;
  kind?: AuditKind;
  since?: string;
  until?: string;
  before?: string;
  limit: number;
}

export const auditRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  app.get<{ Querystring: AuditQueryString }>(
    '/v1/audit',
    { config: { access: 'admin' }, schema: { summary: 'The audit trail: writes and refused attempts', tags: ['audit'], querystring: auditQuerySchema } },
    async (request) => {
      const { actor, kind, since, until, before, limit } = request.query;
      // Times in the ids are UTC ISO strings: compare like with like, whatever offset the caller used.
      const query: AuditQuery = {
        limit,
        ...(actor !== undefined ? { actor } : {}),
        ...(kind !== undefined ? { kind } : {}),
        ...(since !== undefined ? { since: new Date(since).toISOString() } : {}),
        ...(until !== undefined ? { until: new Date(until).toISOString() } : {}),
        ...(before !== undefined ? { before } : {}),
      };
      return deps.audit.list(query);
    },
  );
};
