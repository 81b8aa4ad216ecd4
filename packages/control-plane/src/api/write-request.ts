/** The HTTP side of every write: If-Match, ?dryRun, X-Change-Message/-Author in; ETag and body out. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';
import type { Precondition, WriteRequest, WriteResult } from '../versioning/config-writer.js';

export const DEFAULT_AUTHOR = 'anonymous';
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

/** Reads the write headers; `defaultMessage` is recorded when X-Change-Message is absent. */
export function writeRequestOf(request: FastifyRequest, defaultMessage: string): WriteRequest {
  const query = request.query as { dryRun?: boolean } | undefined;
  const ifMatch = request.headers['if-match'];
  const precondition = parsePrecondition(Array.isArray(ifMatch) ? ifMatch.join(',') : ifMatch);
  const message = headerText(request, 'x-change-message')?.trim();
  const author = headerText(request, 'x-change-author')?.trim();
  return {
    ...(precondition ? { precondition } : {}),
    dryRun: query?.dryRun === true,
    message: message === undefined || message === '' ? defaultMessage : message,
    author: author === undefined || author === '' ? DEFAULT_AUTHOR : author,
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
  setVersionTag(reply, result.version);
  return reply.send({
    version: result.version,
    committed: result.committed,
    ...(result.dryRun ? { dryRun: true } : {}),
    changes: result.changes,
    ...extra,
  });
}
