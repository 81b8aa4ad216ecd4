/**
 * JSON Schemas of the config model. Structure, types, ranges and defaults live here; relations
 * between parts (a route naming a pool, duplicate ids) are checked in validate.ts.
 * Later issues add fields here; `additionalProperties: false` makes unknown fields errors.
 */
import { ALGORITHMS, BACKEND_STATES } from './model.js';
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

export const poolSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    algorithm: { enum: [...ALGORITHMS], default: 'round_robin' },
    backends: { type: 'array', maxItems: 20000, items: backendSchema, default: [] },
  },
} as const;

export const routeSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['pools'],
  properties: {
    match: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        host: { type: 'string', minLength: 1, maxLength: 255 },
        pathPrefix: { type: 'string', pattern: '^/', maxLength: 2048 },
      },
    },
    pools: {
      type: 'array',
      minItems: 1,
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
  },
} as const;
