/**
 * JSON Schemas of the config model. Structure, types, ranges and defaults live here; relations
 * between parts (a route naming a pool, duplicate ids) are checked in validate.ts.
 * Later issues add fields here; `additionalProperties: false` makes unknown fields errors.
 */
import {
  ALGORITHMS,
  ALPN_PROTOCOLS,
  BACKEND_STATES,
  HASH_SOURCES,
  HEALTH_CHECK_TYPES,
  LISTENER_PROTOCOLS,
  POOL_PROTOCOLS,
  PROXY_PROTOCOL_VERSIONS,
  RATE_LIMIT_KEYS,
  RETRY_ON,
  SAME_SITE_VALUES,
  TLS_VERSIONS,
} from './model.js';
import { NAME_PATTERN } from './names.js';

export const backendSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'address'],
  properties: {
    id: { type: 'string', pattern: NAME_PATTERN },
    address: { type: 'string', minLength: 3, maxLength: 300 },
    weight: { type: 'integer', minimum: 1, maximum: 1000, default: 1 },
    state: { enum: [...BACKEND_STATES], default: 'active' },
  },
} as const;

/** A backend in PUT /v1/pools/{pool}/backends/{id}: the id comes from the path. */
export const backendBodySchema = {
  ...backendSchema,
  required: ['address'],
} as const;

/** PATCH /v1/pools/{pool}/backends/{id}: any subset of the fields, no defaults. */
export const backendPatchSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    id: backendSchema.properties.id,
    address: backendSchema.properties.address,
    weight: { type: 'integer', minimum: 1, maximum: 1000 },
    state: { enum: [...BACKEND_STATES] },
  },
} as const;

/** An expected-status range such as `200-399`. */
export const STATUS_RANGE_PATTERN = '^[1-5][0-9][0-9]-[1-5][0-9][0-9]$';

/** RFC 9110 token: header and cookie names. */
export const HTTP_TOKEN_PATTERN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

export const timeoutsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    connectMs: { type: 'integer', minimum: 1, maximum: 600000, default: 1000 },
    requestMs: { type: 'integer', minimum: 0, maximum: 3600000, default: 15000 },
    idleMs: { type: 'integer', minimum: 1, maximum: 3600000, default: 60000 },
  },
} as const;

export const retrySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    attempts: { type: 'integer', minimum: 1, maximum: 10, default: 2 },
    on: {
      type: 'array',
      maxItems: RETRY_ON.length,
      uniqueItems: true,
      items: { enum: [...RETRY_ON] },
      default: ['connect-failure', 'reset', '503', 'gateway-error'],
    },
    backoffMs: { type: 'integer', minimum: 0, maximum: 60000, default: 25 },
    maxBackoffMs: { type: 'integer', minimum: 0, maximum: 60000, default: 250 },
    budgetPercent: { type: 'number', minimum: 0, maximum: 100, default: 20 },
    minRetriesPerSecond: { type: 'integer', minimum: 0, maximum: 100000, default: 3 },
    idempotencyHeader: { type: 'string', pattern: HTTP_TOKEN_PATTERN, maxLength: 128 },
  },
} as const;

const breakerLimitProperties = {
  maxConnections: { type: 'integer', minimum: 1, maximum: 1000000, default: 1024 },
  maxPendingRequests: { type: 'integer', minimum: 0, maximum: 1000000, default: 1024 },
  maxRequests: { type: 'integer', minimum: 1, maximum: 1000000, default: 1024 },
} as const;

export const circuitBreakerSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...breakerLimitProperties,
    perBackend: { type: 'object', additionalProperties: false, default: {}, properties: breakerLimitProperties },
    errorRate: {
      type: 'object',
      additionalProperties: false,
      properties: {
        thresholdPercent: { type: 'integer', minimum: 1, maximum: 100, default: 50 },
        minRequests: { type: 'integer', minimum: 1, maximum: 1000000, default: 20 },
        windowMs: { type: 'integer', minimum: 1000, maximum: 600000, default: 10000 },
        openMs: { type: 'integer', minimum: 100, maximum: 3600000, default: 5000 },
        trialRequests: { type: 'integer', minimum: 1, maximum: 1000, default: 3 },
      },
    },
  },
} as const;

export const rateLimitSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['requestsPerSecond'],
  properties: {
    requestsPerSecond: { type: 'number', exclusiveMinimum: 0, maximum: 10000000 },
    burst: { type: 'integer', minimum: 1, maximum: 10000000 },
    key: { enum: [...RATE_LIMIT_KEYS], default: 'ip' },
    header: { type: 'string', pattern: HTTP_TOKEN_PATTERN, maxLength: 128 },
  },
} as const;

const nameRef = { type: 'string', pattern: NAME_PATTERN } as const;

/** A host name as SNI sends it (no port, no wildcard). */
const SERVER_NAME_PATTERN = '^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$';

export const poolTlsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    serverName: { type: 'string', pattern: SERVER_NAME_PATTERN },
    verify: { type: 'boolean', default: true },
    caCertificate: nameRef,
    clientCertificate: nameRef,
  },
} as const;

export const poolSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    algorithm: { enum: [...ALGORITHMS], default: 'round_robin' },
    // A pool of 50,000 backends is supported; the whole config is bounded by --max-config-bytes.
    backends: { type: 'array', maxItems: 100000, items: backendSchema, default: [] },
    hashOn: {
      type: 'object',
      additionalProperties: false,
      required: ['source'],
      properties: { source: { enum: [...HASH_SOURCES] }, name: { type: 'string', minLength: 1, maxLength: 256 } },
    },
    consistentHash: {
      type: 'object',
      additionalProperties: false,
      properties: {
        virtualNodes: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
        hashBalanceFactor: { type: 'integer', minimum: 100, maximum: 100000 },
      },
    },
    p2c: { type: 'object', additionalProperties: false, properties: { bias: { type: 'number', minimum: 0, maximum: 10, default: 1 } } },
    leastResponseTime: {
      type: 'object',
      additionalProperties: false,
      properties: { decayMs: { type: 'integer', minimum: 100, maximum: 600000, default: 10000 } },
    },
    resourceBased: {
      type: 'object',
      additionalProperties: false,
      properties: {
        header: { type: 'string', pattern: HTTP_TOKEN_PATTERN, maxLength: 128, default: 'x-backend-load' },
        decayMs: { type: 'integer', minimum: 100, maximum: 600000, default: 5000 },
        minWeightPercent: { type: 'integer', minimum: 1, maximum: 100, default: 10 },
      },
    },
    sticky: {
      type: 'object',
      additionalProperties: false,
      properties: {
        cookie: { type: 'string', pattern: HTTP_TOKEN_PATTERN, maxLength: 128, default: 'lb_affinity' },
        ttlSeconds: { type: 'integer', minimum: 0, maximum: 31536000, default: 0 },
        secure: { type: 'boolean', default: false },
        httpOnly: { type: 'boolean', default: true },
        sameSite: { enum: [...SAME_SITE_VALUES], default: 'Lax' },
      },
    },
    healthCheck: {
      type: 'object',
      additionalProperties: false,
      properties: {
        type: { enum: [...HEALTH_CHECK_TYPES], default: 'http' },
        path: { type: 'string', pattern: '^/', maxLength: 2048, default: '/health' },
        intervalMs: { type: 'integer', minimum: 100, maximum: 3600000, default: 5000 },
        // No schema default: it depends on intervalMs (validate.ts fills it in).
        timeoutMs: { type: 'integer', minimum: 10, maximum: 3600000 },
        healthyThreshold: { type: 'integer', minimum: 1, maximum: 100, default: 2 },
        unhealthyThreshold: { type: 'integer', minimum: 1, maximum: 100, default: 3 },
        expectedStatuses: {
          type: 'array',
          minItems: 1,
          maxItems: 64,
          default: [200],
          items: {
            anyOf: [
              { type: 'integer', minimum: 100, maximum: 599 },
              { type: 'string', pattern: STATUS_RANGE_PATTERN },
            ],
          },
        },
        host: { type: 'string', minLength: 1, maxLength: 255 },
        port: { type: 'integer', minimum: 1, maximum: 65535 },
      },
    },
    outlierDetection: {
      type: 'object',
      additionalProperties: false,
      properties: {
        consecutive5xx: { type: 'integer', minimum: 0, maximum: 1000, default: 5 },
        consecutiveGatewayErrors: { type: 'integer', minimum: 0, maximum: 1000, default: 5 },
        baseEjectionMs: { type: 'integer', minimum: 100, maximum: 3600000, default: 30000 },
        maxEjectionPercent: { type: 'integer', minimum: 0, maximum: 100, default: 10 },
        intervalMs: { type: 'integer', minimum: 100, maximum: 3600000, default: 10000 },
      },
    },
    panicThresholdPercent: { type: 'integer', minimum: 0, maximum: 100 },
    slowStartMs: { type: 'integer', minimum: 0, maximum: 3600000 },
    drainTimeoutMs: { type: 'integer', minimum: 0, maximum: 3600000 },
    timeouts: timeoutsSchema,
    retry: retrySchema,
    circuitBreaker: circuitBreakerSchema,
    tls: poolTlsSchema,
    proxyProtocol: { enum: [...PROXY_PROTOCOL_VERSIONS] },
    protocol: { enum: [...POOL_PROTOCOLS] },
    maxStreamsPerConnection: { type: 'integer', minimum: 1, maximum: 1000 },
  },
} as const;

/** PUT /v1/pools/{pool}/backends/{id} with `ttlSeconds`: a self-registered backend on an etcd lease. */
export const registrationBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['address', 'ttlSeconds'],
  properties: {
    ...backendSchema.properties,
    ttlSeconds: { type: 'integer', minimum: 1, maximum: 86400 },
  },
} as const;

const HEADER_NAME_PATTERN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

function valueMatchSchema(nameMaxLength: number, namePattern?: string) {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['name'],
    properties: {
      name: { type: 'string', minLength: 1, maxLength: nameMaxLength, ...(namePattern === undefined ? {} : { pattern: namePattern }) },
      exact: { type: 'string', maxLength: 4096 },
      prefix: { type: 'string', maxLength: 4096 },
      regex: { type: 'string', minLength: 1, maxLength: 1024 },
      present: { type: 'boolean' },
      ignoreCase: { type: 'boolean' },
    },
  } as const;
}

const headerRulesSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    remove: { type: 'array', maxItems: 64, items: { type: 'string', pattern: HEADER_NAME_PATTERN, maxLength: 256 } },
    set: {
      type: 'object',
      maxProperties: 64,
      propertyNames: { pattern: HEADER_NAME_PATTERN, maxLength: 256 },
      additionalProperties: { type: 'string', maxLength: 8192 },
    },
    add: {
      type: 'object',
      maxProperties: 64,
      propertyNames: { pattern: HEADER_NAME_PATTERN, maxLength: 256 },
      additionalProperties: { type: 'string', maxLength: 8192 },
    },
  },
} as const;

export const routeSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    match: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        host: { type: 'string', minLength: 1, maxLength: 255 },
        pathPrefix: { type: 'string', pattern: '^/', maxLength: 2048 },
        methods: { type: 'array', minItems: 1, maxItems: 16, uniqueItems: true, items: { type: 'string', pattern: '^[A-Z][A-Z-]{0,31}$' } },
        headers: { type: 'array', minItems: 1, maxItems: 16, items: valueMatchSchema(256, HEADER_NAME_PATTERN) },
        query: { type: 'array', minItems: 1, maxItems: 16, items: valueMatchSchema(256) },
      },
    },
    pools: {
      type: 'array',
      default: [],
      maxItems: 64,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['pool'],
        properties: {
          pool: { type: 'string', pattern: NAME_PATTERN },
          weight: { type: 'integer', minimum: 0, maximum: 1000, default: 1 },
        },
      },
    },
    rateLimit: rateLimitSchema,
    timeouts: {
      type: 'object',
      additionalProperties: false,
      required: ['requestMs'],
      properties: { requestMs: { type: 'integer', minimum: 0, maximum: 3600000 } },
    },
    retry: retrySchema,
    websocket: {
      type: 'object',
      additionalProperties: false,
      properties: {
        enabled: { type: 'boolean', default: true },
        idleTimeoutMs: { type: 'integer', minimum: 1000, maximum: 86400000, default: 300000 },
      },
    },
    requestHeaders: headerRulesSchema,
    responseHeaders: headerRulesSchema,
    rewrite: {
      type: 'object',
      additionalProperties: false,
      required: ['pathPrefix'],
      properties: { pathPrefix: { type: 'string', pattern: '^/', maxLength: 2048 } },
    },
    redirect: {
      type: 'object',
      additionalProperties: false,
      properties: {
        status: { enum: [301, 302, 303, 307, 308], default: 302 },
        scheme: { enum: ['http', 'https'] },
        host: { type: 'string', minLength: 1, maxLength: 255 },
        port: { type: 'integer', minimum: 1, maximum: 65535 },
        path: { type: 'string', pattern: '^/', maxLength: 2048 },
        pathPrefix: { type: 'string', pattern: '^/', maxLength: 2048 },
        stripQuery: { type: 'boolean', default: false },
      },
    },
    listeners: { type: 'array', minItems: 1, maxItems: 64, uniqueItems: true, items: nameRef },
    httpsRedirect: {
      type: 'object',
      additionalProperties: false,
      properties: {
        status: { enum: [301, 308], default: 308 },
        port: { type: 'integer', minimum: 1, maximum: 65535, default: 443 },
      },
    },
    hsts: {
      type: 'object',
      additionalProperties: false,
      properties: {
        maxAgeSeconds: { type: 'integer', minimum: 0, maximum: 315360000, default: 31536000 },
        includeSubDomains: { type: 'boolean', default: false },
        preload: { type: 'boolean', default: false },
      },
    },
    forwarded: { type: 'boolean' },
  },
} as const;

/** An OpenSSL cipher list; validate.ts also asks OpenSSL whether it names any cipher. */
const CIPHERS_PATTERN = '^[A-Za-z0-9_+!@=.:-]+$';

export const listenerTlsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['certificates'],
  properties: {
    certificates: { type: 'array', minItems: 1, maxItems: 256, uniqueItems: true, items: nameRef },
    defaultCertificate: nameRef,
    minVersion: { enum: [...TLS_VERSIONS], default: 'TLSv1.2' },
    ciphers: { type: 'string', minLength: 1, maxLength: 4096, pattern: CIPHERS_PATTERN },
    alpn: { type: 'array', minItems: 1, maxItems: ALPN_PROTOCOLS.length, uniqueItems: true, items: { enum: [...ALPN_PROTOCOLS] }, default: ['http/1.1'] },
    sessionResumption: { type: 'boolean', default: true },
    sessionTimeoutSeconds: { type: 'integer', minimum: 1, maximum: 86400, default: 300 },
  },
} as const;

export const listenerSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['port', 'protocol'],
  properties: {
    port: { type: 'integer', minimum: 1, maximum: 65535 },
    protocol: { enum: [...LISTENER_PROTOCOLS] },
    tls: listenerTlsSchema,
    // L4 listeners only (validate-l4.ts); no defaults here, so HTTP listeners never get them.
    idleTimeoutMs: { type: 'integer', minimum: 1000, maximum: 86400000 },
    maxConnections: { type: 'integer', minimum: 1, maximum: 1000000 },
    helloTimeoutMs: { type: 'integer', minimum: 100, maximum: 60000 },
    acceptProxyProtocol: {
      type: 'object',
      additionalProperties: false,
      required: ['trustedSources'],
      properties: {
        trustedSources: { type: 'array', minItems: 1, maxItems: 256, uniqueItems: true, items: { type: 'string', minLength: 1, maxLength: 64 } },
      },
    },
    h2c: { type: 'boolean' },
  },
} as const;

/** Largest certificate chain accepted, in characters of PEM (a long chain of 4096-bit RSA certificates fits). */
export const MAX_CERTIFICATE_PEM = 64 * 1024;

export const certificateSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['certificate'],
  properties: {
    certificate: { type: 'string', minLength: 1, maxLength: MAX_CERTIFICATE_PEM },
    allowExpired: { type: 'boolean' },
  },
} as const;

/** PUT /v1/certificates/{name}: the resource plus its private key, which is never stored in the config. */
export const certificateBodySchema = {
  ...certificateSchema,
  properties: {
    ...certificateSchema.properties,
    privateKey: { type: 'string', minLength: 1, maxLength: 64 * 1024 },
  },
} as const;

export const configSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    pools: {
      type: 'object',
      default: {},
      propertyNames: { pattern: NAME_PATTERN },
      additionalProperties: poolSchema,
    },
    routes: {
      type: 'object',
      default: {},
      propertyNames: { pattern: NAME_PATTERN },
      additionalProperties: routeSchema,
    },
    listeners: {
      type: 'object',
      maxProperties: 256,
      propertyNames: { pattern: NAME_PATTERN },
      additionalProperties: listenerSchema,
    },
    certificates: {
      type: 'object',
      maxProperties: 4096,
      propertyNames: { pattern: NAME_PATTERN },
      additionalProperties: certificateSchema,
    },
  },
} as const;
