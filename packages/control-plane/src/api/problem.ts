/**
 * RFC 9457 problem documents: every error the REST API answers is `application/problem+json`
 * with a stable `code` from errors.ts and, for bad input, `errors: [{field, message}]`.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { describeParseError, type FieldError } from '@lb/shared';
import type { RouteTable } from './route-table.js';
import { ApiError, ERROR_CODES, StoreTooLargeError, StoreUnavailableError, type ErrorCode } from '../errors.js';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  instance?: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

export function problemType(code: ErrorCode): string {
  return `urn:lb:problem:${code}`;
}

export function toProblem(err: ApiError, instance?: string): ProblemDocument {
  const { status, title } = ERROR_CODES[err.code];
  return {
    type: problemType(err.code),
    title,
    status,
    detail: err.detail,
    code: err.code,
    ...(instance !== undefined ? { instance } : {}),
    ...err.extra,
    ...(err.errors !== undefined ? { errors: err.errors } : {}),
  };
}

/** Fastify's own schema errors (path and query parameters) as field errors. */
function schemaFieldErrors(err: FastifyError): FieldError[] {
  const where = err.validationContext === 'params' ? 'path' : err.validationContext === 'querystring' ? 'query' : (err.validationContext ?? 'request');
  return (err.validation ?? []).map((v) => {
    if (v.keyword === 'additionalProperties') {
      // ajv runs verbose (app.ts), so the error carries the schema that lists what is allowed.
      const unknown = String((v.params as { additionalProperty?: string }).additionalProperty);
      const known = Object.keys((v as unknown as { parentSchema?: { properties?: object } }).parentSchema?.properties ?? {});
      const takes = known.length === 0 ? `this endpoint takes no ${where === 'query' ? 'query parameters' : 'fields here'}` : `it takes ${known.join(', ')}`;
      return { field: `${where}.${unknown}`, message: `unknown ${where === 'query' ? 'query parameter' : 'field'}: ${takes}` };
    }
    const param = v.instancePath.replace(/^\//, '').replace(/\//g, '.') || String((v.params as { missingProperty?: string }).missingProperty ?? '');
    const field = param === '' ? where : `${where}.${param}`;
    if (v.keyword === 'pattern') return { field, message: 'is not a valid name: use [a-z0-9][a-z0-9-]{0,62}' };
    return { field, message: v.message ?? 'is invalid' };
  });
}

/** Maps anything thrown by a handler, a hook or Fastify itself to an ApiError. */
export function asApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof StoreUnavailableError) return new ApiError('LB_CP_STORE_UNAVAILABLE', err.message);
  if (err instanceof StoreTooLargeError) return new ApiError('LB_CP_PAYLOAD_TOO_LARGE', err.message);
  const fe = err as FastifyError;
  if (fe.validation) return new ApiError('LB_CP_VALIDATION', 'invalid path or query parameters; nothing was changed', schemaFieldErrors(fe));
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new ApiError('LB_CP_PAYLOAD_TOO_LARGE', fe.message);
  if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
    return new ApiError('LB_CP_UNSUPPORTED_MEDIA_TYPE', 'the body must be JSON: send it with Content-Type: application/json', [
      { field: 'Content-Type', message: 'must be application/json (or another +json type)' },
    ]);
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) return new ApiError('LB_CP_BAD_REQUEST', fe.message);
  return new ApiError('LB_CP_INTERNAL', 'internal error; see the control-plane log');
}

export function sendProblem(reply: FastifyReply, err: ApiError, request: FastifyRequest): FastifyReply {
  if (err.code === 'LB_CP_STORE_UNAVAILABLE') reply.header('retry-after', '1');
  // RFC 6750: a 401 names the scheme it wants.
  if (err.code === 'LB_CP_UNAUTHENTICATED') reply.header('www-authenticate', 'Bearer realm="lb"');
  if (request.audit) request.audit.code = err.code;
  return reply.code(err.status).type(PROBLEM_CONTENT_TYPE).send(toProblem(err, request.url));
}

/**
 * A body that does not parse is a problem document, not Fastify's default error. An empty body is
 * `undefined`: writes then answer "must be a JSON object", bodiless POST/DELETE just work.
 */
function parseJsonBody(_request: FastifyRequest, body: string | Buffer, done: (err: Error | null, value?: unknown) => void): void {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  if (text.trim() === '') return done(null, undefined);
  try {
    done(null, JSON.parse(text));
  } catch (err) {
    done(new ApiError('LB_CP_BODY_NOT_JSON', `the body is not valid JSON: ${describeParseError(err)}`, [{ field: '(body)', message: 'is not valid JSON' }]));
  }
}

/** JSON, and its structured-syntax variants such as application/merge-patch+json. */
const JSON_TYPES = ['application/json', /^application\/[a-z0-9.+-]+\+json$/i] as const;

/**
 * Bodies must be declared JSON: anything else is 415 before it is read, so a text/plain or form
 * body is never committed by accident. A wrong method on a path that exists is 405 with Allow.
 */
export function installProblemHandling(app: FastifyInstance, routes: RouteTable): void {
  app.removeAllContentTypeParsers();
  for (const type of JSON_TYPES) app.addContentTypeParser(type, { parseAs: 'string' }, parseJsonBody);
  app.setErrorHandler((err, request, reply) => {
    const apiError = asApiError(err);
    if (apiError.code === 'LB_CP_INTERNAL') request.log.error({ err }, 'unhandled error');
    else if (apiError.code === 'LB_CP_STORE_UNAVAILABLE') request.log.warn({ err: (err as Error).message }, 'store unavailable');
    return sendProblem(reply, apiError, request);
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? request.url;
    const allowed = routes.allowed(path);
    if (allowed.length > 0) {
      reply.header('allow', allowed.join(', '));
      return sendProblem(
        reply,
        new ApiError('LB_CP_METHOD_NOT_ALLOWED', `${request.method} is not allowed on ${path}; it answers ${allowed.join(', ')}`, undefined, {
          allow: allowed,
        }),
        request,
      );
    }
    return sendProblem(reply, new ApiError('LB_CP_NOT_FOUND', `no such endpoint: ${request.method} ${path}`), request);
  });
}
