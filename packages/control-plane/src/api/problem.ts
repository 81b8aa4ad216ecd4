/**
 * RFC 9457 problem documents: every error the REST API answers is `application/problem+json`
 * with a stable `code` from errors.ts and, for bad input, `errors: [{field, message}]`.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { FieldError } from '@lb/shared';
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
  if (fe.validation) return new ApiError('LB_CP_VALIDATION', 'invalid path or query parameters', schemaFieldErrors(fe));
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new ApiError('LB_CP_PAYLOAD_TOO_LARGE', fe.message);
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) return new ApiError('LB_CP_BAD_REQUEST', fe.message);
  return new ApiError('LB_CP_INTERNAL', 'internal error; see the control-plane log');
}

export function sendProblem(reply: FastifyReply, err: ApiError, request: FastifyRequest): FastifyReply {
  if (err.code === 'LB_CP_STORE_UNAVAILABLE') reply.header('retry-after', '1');
  return reply.code(err.status).type(PROBLEM_CONTENT_TYPE).send(toProblem(err, request.url));
}

/**
 * Bodies are parsed as JSON whatever their content type (curl -d sends form encoding), and a
 * body that does not parse is a problem document, not Fastify's default error. An empty body is
 * `undefined`: writes then answer "must be a JSON object", bodiless POST/DELETE just work.
 */
function parseJsonBody(_request: FastifyRequest, body: string | Buffer, done: (err: Error | null, value?: unknown) => void): void {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  if (text.trim() === '') return done(null, undefined);
  try {
    done(null, JSON.parse(text));
  } catch (err) {
    done(new ApiError('LB_CP_BODY_NOT_JSON', `the body is not valid JSON: ${(err as Error).message}`, [{ field: '(body)', message: 'is not valid JSON' }]));
  }
}

export function installProblemHandling(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, parseJsonBody);
  app.setErrorHandler((err, request, reply) => {
    const apiError = asApiError(err);
    if (apiError.code === 'LB_CP_INTERNAL') request.log.error({ err }, 'unhandled error');
    else if (apiError.code === 'LB_CP_STORE_UNAVAILABLE') request.log.warn({ err: (err as Error).message }, 'store unavailable');
    return sendProblem(reply, apiError, request);
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, new ApiError('LB_CP_NOT_FOUND', `no such endpoint: ${request.method} ${request.url.split('?')[0]}`), request),
  );
}
