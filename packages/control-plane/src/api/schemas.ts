/** Fastify schemas of path and query parameters, shared by the route files and compiled once. */
import { NAME_PATTERN } from '@lb/shared';

const name = { type: 'string', pattern: NAME_PATTERN } as const;
/** Versions fit the 12 zero-padded digits of their etcd keys. */
const version = { type: 'integer', minimum: 0, maximum: 999_999_999_999 } as const;

export function paramsSchema(...names: string[]): object {
  return {
    type: 'object',
    required: names,
    properties: Object.fromEntries(names.map((n) => [n, n === 'n' ? version : name])),
  };
}

/** Query of every write: `?dryRun=true` validates and diffs without committing. */
export const writeQuerySchema = {
  type: 'object',
  properties: { dryRun: { type: 'boolean', default: false } },
} as const;

export const listVersionsQuerySchema = {
  type: 'object',
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
    before: { ...version, minimum: 1 },
  },
} as const;

export const diffQuerySchema = {
  type: 'object',
  properties: { against: version },
} as const;
