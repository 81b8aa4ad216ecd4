/**
 * The short answers the proxy gives itself (errors.ts LOCAL_REPLY_CODES): built once, sent with
 * one writeHead and one end. `x-lb-error` tells them apart from a backend's own answers, and the
 * access log records the code. Answers to requests whose framing cannot be trusted close the
 * connection (`Connection: close`), so that nothing after them is read as another request.
 */
import { LOCAL_REPLY_CODES, type LocalReplyCode, type UpstreamErrorKind } from '../errors.js';
import type { OverloadReason } from '../resilience/circuit-breaker.js';
import type { ProxyResponse } from './exchange.js';

export interface LocalReply {
  readonly status: number;
  /** The `x-lb-error` value, also written to the access log. */
  readonly code: LocalReplyCode;
  readonly headers: readonly string[];
  readonly body: Buffer;
}

function localReply(code: LocalReplyCode, text: string = LOCAL_REPLY_CODES[code].text, extra: readonly string[] = []): LocalReply {
  const spec: { status: number; close?: boolean } = LOCAL_REPLY_CODES[code];
  const body = Buffer.from(`${text}\n`);
  const close = spec.close === true ? ['connection', 'close'] : [];
  return {
    status: spec.status,
    code,
    body,
    headers: ['content-type', 'text/plain; charset=utf-8', 'content-length', String(body.length), 'x-lb-error', code, ...close, ...extra],
  };
}

export const LOCAL_REPLIES = {
  noConfig: localReply('no_config'),
  noRoute: localReply('no_route'),
  noBackend: localReply('no_backend'),
  connectFailed: localReply('upstream_connect'),
  badGateway: localReply('upstream_error'),
  timeout: localReply('upstream_timeout'),
  tlsFailed: localReply('upstream_tls'),
  badRequest: localReply('bad_request'),
  tooManyHeaders: localReply('too_many_headers'),
  transferCodingNotImplemented: localReply('transfer_coding_not_implemented'),
  /** Over a circuit-breaker limit or shed; `x-lb-overloaded` says which limit. */
  overloaded: {
    backend: localReply('overloaded', 'backend over its limits', ['x-lb-overloaded', 'backend']),
    pool: localReply('overloaded', 'pool over its limits', ['x-lb-overloaded', 'pool']),
    'circuit-open': localReply('overloaded', 'backend circuit open', ['x-lb-overloaded', 'circuit-open']),
    node: localReply('overloaded', 'data plane overloaded', ['x-lb-overloaded', 'node', 'retry-after', '1']),
  } satisfies Record<OverloadReason, LocalReply>,
} as const;

/** What a client is told when its request's backend failed before answering, by how it failed. */
export function upstreamFailureReply(kind: UpstreamErrorKind): LocalReply {
  switch (kind) {
    case 'timeout':
      return LOCAL_REPLIES.timeout;
    case 'connect':
      return LOCAL_REPLIES.connectFailed;
    case 'tls':
      return LOCAL_REPLIES.tlsFailed;
    default:
      return LOCAL_REPLIES.badGateway;
  }
}

const kLocal = Symbol('lb.localReply');
type Tagged = ProxyResponse & { [kLocal]?: string };

/** The local reply's code a response was answered with, for the access log. */
export function localReplyCode(res: ProxyResponse): string | undefined {
  return (res as Tagged)[kLocal];
}

/**
 * The gRPC status of each local reply (RFC: gRPC's HTTP-to-gRPC mapping, with timeouts as
 * DEADLINE_EXCEEDED): what a gRPC client is told instead of an HTTP body it cannot read.
 */
export const GRPC_STATUS_OF: Readonly<Record<LocalReplyCode, number>> = {
  no_config: 14,
  no_route: 12,
  no_backend: 14,
  upstream_connect: 14,
  upstream_error: 14,
  upstream_timeout: 4,
  upstream_tls: 14,
  bad_request: 13,
  too_many_headers: 13,
  transfer_coding_not_implemented: 13,
  overloaded: 14,
  rate_limited: 14,
  https_redirect: 14,
};

/** grpc-message is percent-encoded (gRPC over HTTP/2): everything but printable ASCII and `%`. */
function grpcMessage(text: string): string {
  return text.replace(/[^\x20-\x24\x26-\x7e]/g, (c) => encodeURIComponent(c));
}

/**
 * A local reply to a gRPC call: HTTP 200 with the status in a trailers-only response (one
 * HEADERS frame), as a gRPC server answers a call it fails at once.
 */
function sendGrpcStatus(res: ProxyResponse, code: LocalReplyCode, text: string, extra: readonly string[] = []): void {
  (res as Tagged)[kLocal] = code;
  res.writeHead(200, [
    'content-type',
    'application/grpc',
    'grpc-status',
    String(GRPC_STATUS_OF[code]),
    'grpc-message',
    grpcMessage(text),
    'x-lb-error',
    code,
    ...extra,
  ]);
  res.end();
}

export function sendLocal(res: ProxyResponse, reply: LocalReply): void {
  if (res.req.grpc === true) return sendGrpcStatus(res, reply.code, reply.body.toString('latin1', 0, reply.body.length - 1));
  (res as Tagged)[kLocal] = reply.code;
  res.writeHead(reply.status, reply.headers as string[]);
  res.end(reply.body);
}

/** A route's redirect (the route's answer, not an error: no x-lb-error): `Location` and a short body. */
export function sendRedirect(res: ProxyResponse, status: number, location: string): void {
  const body = `${location}\n`;
  res.writeHead(status, ['location', location, 'content-type', 'text/plain; charset=utf-8', 'content-length', String(Buffer.byteLength(body))]);
  res.end(body);
}

/** A plain-HTTP request to a route that wants HTTPS: 301 or 308 to the same URL over https. */
export function sendHttpsRedirect(res: ProxyResponse, status: number, location: string): void {
  (res as Tagged)[kLocal] = 'https_redirect';
  const body = `${LOCAL_REPLY_CODES.https_redirect.text}: ${location}\n`;
  res.writeHead(status, [
    'content-type',
    'text/plain; charset=utf-8',
    'content-length',
    String(Buffer.byteLength(body)),
    'location',
    location,
    'x-lb-error',
    'https_redirect',
  ]);
  res.end(body);
}

export function sendRateLimited(res: ProxyResponse, waitMs: number): void {
  const retryAfter = String(Math.max(1, Math.ceil(waitMs / 1000)));
  if (res.req.grpc === true) return sendGrpcStatus(res, 'rate_limited', LOCAL_REPLY_CODES.rate_limited.text, ['retry-after', retryAfter]);
  (res as Tagged)[kLocal] = 'rate_limited';
  const body = `${LOCAL_REPLY_CODES.rate_limited.text}\n`;
  res.writeHead(429, [
    'content-type',
    'text/plain; charset=utf-8',
    'content-length',
    String(body.length),
    'x-lb-error',
    'rate_limited',
    'retry-after',
    retryAfter,
  ]);
  res.end(body);
}
