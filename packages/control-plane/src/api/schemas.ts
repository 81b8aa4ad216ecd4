/**
 * Fastify schemas of path and query parameters, shared by the route files and compiled once.
 * Every query schema lists its parameters and refuses others (`?dryrun=true` is a typo, not a
 * no-op); app.ts turns ajv's removeAdditional off so that they are refused, not dropped.
 */
import { NAME_PATTERN } from '@lb/shared';
import { AUDIT_KINDS } from '../audit/audit-log.js';

const name = { type: 'string', pattern: NAME_PATTERN } as const;
/** Versions fit the 12 zero-padded digits of their etcd keys. */
const version = { type: 'integer', minimum: 0, maximum: 999_999_999_999 } as const;
/** Node ids as the data plane accepts them (--node-id). */
const nodeId = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$' } as const;

export function paramsSchema(...names: string[]): object {
  return {
    type: 'object',
    required: names,
    properties: Object.fromEntries(names.map((n) => [n, n === 'n' ? version : n === 'node' ? nodeId : name])),
  };
}

/** Routes without query parameters: any parameter is an error. */
export const noQuerySchema = { type: 'object', additionalProperties: false, properties: {} } as const;

/** Query of every write: `?dryRun=true` validates and diffs without committing. */
export const writeQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    dryRun: { type: 'boolean', default: false, description: 'validate and answer the diff without committing' },
    stage: { type: 'boolean', default: false, description: 'commit to the history without pushing it: POST /v1/versions/{n}/rollout takes it to the nodes' },
  },
} as const;

export const listVersionsQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
    before: { ...version, minimum: 1, description: 'only versions below this one: the `next` of the previous page' },
  },
} as const;

export const diffQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: { against: { ...version, description: "the version to compare with; default the version's parent, 0 is the empty config" } },
} as const;

export const auditQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    actor: { type: 'string', minLength: 1, maxLength: 128, description: 'only entries of this token name' },
    kind: { enum: [...AUDIT_KINDS], description: 'only writes or only refused attempts' },
    since: { type: 'string', format: 'date-time', description: 'ISO 8601, inclusive' },
    until: { type: 'string', format: 'date-time', description: 'ISO 8601, inclusive' },
    before: { type: 'string', pattern: '^[0-9T:.Z-]+_[0-9a-f]+$', description: 'the `next` of the previous page' },
    limit: { type: 'integer', minimum: 1, maximum: 500, default: 100 },
  },
} as const;
