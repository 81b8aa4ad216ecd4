/** Documentation-only schemas of request bodies and answers (openapi.ts), from @lb/shared's JSON Schemas. */
import {
  backendBodySchema,
  backendPatchSchema,
  backendSchema,
  certificateBodySchema,
  configSchema,
  listenerSchema,
  poolSchema,
  registrationBodySchema,
  routeSchema,
} from '@lb/shared';

/** What GET /v1/certificates tells about one certificate (tls/certificate-details.ts): metadata, never a key. */
const certificateDetails = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    subject: { type: 'string' },
    subjectAltNames: { type: 'array', items: { type: 'string' } },
    issuer: { type: 'string' },
    notBefore: { type: 'string', format: 'date-time' },
    notAfter: { type: 'string', format: 'date-time' },
    fingerprintSha256: { type: 'string' },
    keyType: { type: 'string' },
    publicKeyId: { type: 'string' },
    chainLength: { type: 'integer' },
    isCa: { type: 'boolean' },
    allowExpired: { type: 'boolean' },
    hasPrivateKey: { type: 'boolean' },
    usedBy: { type: 'array', items: { type: 'string' } },
    expiresInDays: { type: 'integer' },
    warning: { type: 'string' },
  },
} as const;

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
  listener: { body: { ...listenerSchema, description: 'A listener, or the GET answer {version, name, listener}' } },
  listenerAnswer: answer('One listener', { name: { type: 'string' }, listener: listenerSchema }),
  listeners: answer('Every listener by name', { listeners: { type: 'object', additionalProperties: listenerSchema } }),
  certificate: {
    body: {
      ...certificateBodySchema,
      description:
        'The PEM chain (certificate first, then each issuer) and, for certificates that are served or presented, its private key (PEM; stored encrypted, never returned)',
    },
  },
  certificateAnswer: answer("One certificate's metadata", { name: { type: 'string' }, certificate: certificateDetails }),
  certificates: answer('Every certificate with expiry warnings', {
    warnDays: { type: 'integer' },
    certificates: { type: 'array', items: certificateDetails },
    warnings: { type: 'array', items: { type: 'string' } },
  }),
} as const;
