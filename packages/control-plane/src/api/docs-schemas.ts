/** Documentation-only schemas of request bodies and answers (openapi.ts), from @lb/shared's JSON Schemas. */
import { backendBodySchema, backendPatchSchema, backendSchema, configSchema, poolSchema, registrationBodySchema, routeSchema } from '@lb/shared';

const change = {
  type: 'object',
  properties: { op: { enum: ['add', 'remove', 'change'] }, path: { type: 'string' }, before: {}, after: {} },
} as const;

/** What every write answers (plus the members each route adds). */
export const writeAnswer = {
  type: 'object',
  description: 'The new version (or the current one when nothing was committed), with ETag: "<version>"',
  properties: {
    version: { type: 'integer' },
    committed: { type: 'boolean' },
    dryRun: { type: 'boolean' },
    changes: { type: 'array', items: change },
  },
  additionalProperties: true,
} as const;

function answer(description: string, properties: Record<string, object>): object {
  return { type: 'object', description, properties: { version: { type: 'integer' }, ...properties }, additionalProperties: true };
}

export const docs = {
  config: { body: { ...configSchema, description: 'The whole config, or the GET /v1/config answer {version, config} (its version acts as If-Match)' } },
  configAnswer: answer('The current config and its version (also in ETag)', { config: configSchema }),
  pool: { body: { ...poolSchema, description: 'A pool, or the GET answer {version, name, pool}' } },
  poolPatch: { body: { type: 'object', description: 'RFC 7396 merge patch of the pool: members replace, null removes, objects merge' } },
  poolAnswer: answer('One pool', { name: { type: 'string' }, pool: poolSchema }),
  pools: answer('Every pool by name', { pools: { type: 'object', additionalProperties: poolSchema } }),
  route: { body: { ...routeSchema, description: 'A route, or the GET answer {version, name, route}' } },
  routeAnswer: answer('One route', { name: { type: 'string' }, route: routeSchema }),
  routes: answer('Every route by name', { routes: { type: 'object', additionalProperties: routeSchema } }),
  backend: {
    body: {
      description: 'A backend (the id comes from the path), or the GET answer {version, pool, backend}; with ttlSeconds it self-registers on a lease instead',
      oneOf: [backendBodySchema, registrationBodySchema],
    },
  },
  backendPatch: { body: backendPatchSchema },
  backendAnswer: answer('One backend', { pool: { type: 'string' }, backend: backendSchema }),
  backends: { body: { type: 'array', items: backendSchema, description: "The pool's whole backend list, or the GET answer {version, pool, backends}" } },
  backendsAnswer: answer("A pool's backends", { pool: { type: 'string' }, backends: { type: 'array', items: backendSchema } }),
} as const;
