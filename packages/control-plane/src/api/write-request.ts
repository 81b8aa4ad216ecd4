/** The HTTP side of every write: If-Match, ?dryRun, X-Change-Message in; ETag and body out; the audit note. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';
import type { Precondition, WriteRequest, WriteResult } from '../versioning/config-writer.js';

const MAX_HEADER_TEXT = 1024;

/** `"7"`, `7`, `W/"7"` and lists of them; `*` matches any version. */
export function parsePrecondition(header: string | undefined): Precondition | undefined {
  if (header === undefined) return undefined;
  const versions: number[] = [];
  for (const raw of header.split(',')) {
    const tag = raw.trim().replace(/^W\//, '');
    if (tag === '*') return { anyVersion: true };
    const text = tag.startsWith('"') && tag.endsWith('"') && tag.length >= 2 ? tag.slice(1, -1) : tag;
    if (!/^\d{1,12}$/.test(text)) {
      throw new ApiError('LB_CP_BAD_IF_MATCH', `If-Match "${header}" is not a config version; send the ETag of a GET, e.g. If-Match: "12"`, [
        { field: 'If-Match', message: 'must be a config version such as "12"' },
      ]);
    }
    versions.push(Number(text));
  }
  return { versions };
}

function headerText(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  const text = Array.isArray(value) ? value.join(', ') : value;
  if (text !== undefined && text.length > MAX_HEADER_TEXT) {
    throw new ApiError('LB_CP_VALIDATION', `${name} is too long`, [{ field: name, message: `must be at most ${MAX_HEADER_TEXT} characters` }]);
  }
  return text;
}

export interface WriteRequestOptions {
  /** The `version` of a GET-shaped body (envelope.ts): the precondition when If-Match is absent. */
  bodyVersion?: number;
}

/**
 * Reads the write headers; `defaultMessage` is recorded when X-Change-Message is absent. The
 * author is the caller's token, never a header: X-Change-Author is refused so that a script still
 * sending it learns that it no longer decides anything.
 */
export function writeRequestOf(request: FastifyRequest, defaultMessage: string, options: WriteRequestOptions = {}): WriteRequest {
  const query = request.query as { dryRun?: boolean; stage?: boolean } | undefined;
  const ifMatch = request.headers['if-match'];
  const header = parsePrecondition(Array.isArray(ifMatch) ? ifMatch.join(',') : ifMatch);
  const precondition = header ?? (options.bodyVersion !== undefined ? { versions: [options.bodyVersion] } : undefined);
  if (request.headers['x-change-author'] !== undefined) {
    throw new ApiError('LB_CP_VALIDATION', 'X-Change-Author is not accepted: the author of a change is the name of the token it is made with', [
      { field: 'X-Change-Author', message: 'remove it; versions and the audit trail record the token name as actor' },
    ]);
  }
  const text = headerText(request, 'x-change-message')?.trim();
  const message = text === undefined || text === '' ? defaultMessage : text;
  const dryRun = query?.dryRun === true;
  request.audit.message = message;
  request.audit.dryRun = dryRun;
  return {
    ...(precondition ? { precondition } : {}),
    dryRun,
    ...(query?.stage === true ? { stage: true } : {}),
    message,
    actor: request.principal?.name ?? 'anonymous',
    source: request.ip,
    requestId: String(request.id),
  };
}

export function setVersionTag(reply: FastifyReply, version: number): FastifyReply {
  return reply.header('etag', `"${version}"`);
}

/**
 * The answer of every write: `{version, committed, changes, ...extra}` plus `dryRun: true` for dry
 * runs, with `ETag: "<version>"` (the new version, or the current one when nothing was committed).
 */
export function sendWriteResult(reply: FastifyReply, result: WriteResult, extra: Record<string, unknown> = {}): FastifyReply {
  reply.request.audit.version = result.version;
  reply.request.audit.committed = result.committed;
  setVersionTag(reply, result.version);
  return reply.send({
    version: result.version,
    committed: result.committed,
    ...(result.dryRun ? { dryRun: true } : {}),
    ...(result.staged ? { staged: true } : {}),
    changes: result.changes,
    ...extra,
  });
}
