/**
 * Who may call what. Every route declares `config: { access }` (roles.ts): `public`, or the
 * least role a token needs. The check runs before the body is read, so a caller without the
 * right token learns nothing and costs little. A route that declares nothing needs admin (fail
 * closed); paths that match no route need any valid token, so probing for endpoints needs one too.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';
import type { Authenticator } from './authenticator.js';
import { roleAllows, type Access, type Principal } from './roles.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route; absent: admin. */
    access?: Access;
  }
  interface FastifyRequest {
    /** The authenticated caller; null on public routes and before authentication. */
    principal: Principal | null;
  }
}

export function requiredAccess(request: FastifyRequest): Access {
  if (request.is404) return 'viewer';
  return request.routeOptions.config.access ?? 'admin';
}

export function installAccessControl(app: FastifyInstance, authenticator: Authenticator): void {
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request) => {
    const access = requiredAccess(request);
    if (access === 'public') return;
    const principal = await authenticator.authenticate(request.headers.authorization, request.ip);
    request.principal = principal;
    if (!roleAllows(principal.role, access)) {
      throw new ApiError(
        'LB_CP_FORBIDDEN',
        `token "${principal.name}" has role ${principal.role}; ${request.method} ${request.routeOptions.url ?? request.url} needs ${access} or above`,
        undefined,
        { role: principal.role, requiredRole: access },
      );
    }
  });
}
