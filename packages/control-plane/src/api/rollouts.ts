/**
 * Staged rollouts: POST /v1/versions/{n}/rollout takes a version written with ?stage=true to the
 * nodes in steps (rollout/rollout-conductor.ts drives it), GET /v1/rollouts[/{id}] shows them, and
 * pause, resume and abort change the record in etcd, which every replica follows.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import { ApiError } from '../errors.js';
import { parseRolloutRequest, type RolloutRecord, type RolloutState } from '../rollout/rollout-model.js';
import type { RolloutStore } from '../rollout/rollout-store.js';
import type { ApiDeps } from './deps.js';
import { noQuerySchema, paramsSchema } from './schemas.js';

interface VersionParams {
  n: number;
}

interface RolloutParams {
  id: string;
}

const STEP_SCHEMA = {
  type: 'object',
  properties: {
    nodes: { type: 'integer', minimum: 1, description: 'how many nodes run the version once this step is reached' },
    percent: { type: 'number', exclusiveMinimum: 0, maximum: 100, description: 'or: this share of the connected nodes (rounded up)' },
    bakeSeconds: { type: 'integer', minimum: 0, default: 0, description: 'how long they run it (all ACKed) before the next step' },
  },
} as const;

const ROLLOUT_BODY = {
  type: 'object',
  required: ['steps'],
  properties: {
    steps: { type: 'array', minItems: 1, maxItems: 20, items: STEP_SCHEMA },
    abortOn: {
      type: 'object',
      properties: {
        nack: { type: 'boolean', default: true, description: 'a node of the rollout refused the version' },
        errorRatePoints: { type: 'number', description: "the rollout's nodes' error rate above the others' by more than this many points" },
        p99Ms: { type: 'number', description: "the rollout's nodes' p99 above this" },
        minRequests: { type: 'integer', default: 20, description: 'judge error rate and p99 over at least this many requests' },
        ackTimeoutSeconds: {
          type: 'integer',
          default: 600,
          description: "abort when a step's nodes have not all run the version this long after the step started",
        },
      },
    },
  },
} as const;

const ROLLOUT_ANSWER = {
  type: 'object',
  description: 'A rollout: `step` counts from 1; `canaries` are the nodes that run `version`',
  properties: {
    id: { type: 'string' },
    version: { type: 'integer' },
    baseline: { type: 'integer' },
    state: { enum: ['running', 'paused', 'done', 'aborted'] },
    step: { type: 'integer' },
    steps: { type: 'array', items: STEP_SCHEMA },
    canaries: { type: 'array', items: { type: 'string' } },
    reason: { type: 'string', nullable: true },
    rollbackVersion: { type: 'integer', nullable: true },
  },
  additionalProperties: true,
} as const;

/** Ids are safe path segments (paramsSchema's name pattern), sortable by time. */
function newId(now: Date): string {
  return `r-${now.getTime().toString(36)}-${randomBytes(3).toString('hex')}`;
}

async function rolloutOf(store: RolloutStore, id: string) {
  const found = await store.get(id);
  if (found === undefined) throw new ApiError('LB_CP_NOT_FOUND', `rollout "${id}" does not exist`);
  return found;
}

/** Changes a rollout's state if it is in one of `from`; guarded, retried when the leader changed it meanwhile. */
async function transition(store: RolloutStore, id: string, from: readonly RolloutState[], change: (r: RolloutRecord) => RolloutRecord): Promise<RolloutRecord> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const { record, revision } = await rolloutOf(store, id);
    if (!from.includes(record.state)) {
      throw new ApiError('LB_CP_ROLLOUT_STATE', `rollout "${id}" is ${record.state}; this needs it ${from.join(' or ')}`, undefined, { state: record.state });
    }
    const next = { ...change(record), updatedAt: new Date().toISOString() };
    if (await store.update(next, revision)) return next;
  }
  throw new ApiError('LB_CP_CONFLICT', `rollout "${id}" kept changing under this request; retry`);
}

export const rolloutRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  const tags = ['rollouts'];
  const idParams = paramsSchema('id');

  app.post<{ Params: VersionParams }>(
    '/v1/versions/:n/rollout',
    {
      config: { access: 'operator', docs: { body: ROLLOUT_BODY, response: { 201: ROLLOUT_ANSWER } } },
      schema: {
        summary: 'Take a staged version to the nodes in steps, rolling back by itself on a breach',
        tags,
        params: paramsSchema('n'),
        querystring: noQuerySchema,
      },
    },
    async (request, reply) => {
      const { n } = request.params;
      request.audit.message = `roll out version ${n}`;
      const parsed = parseRolloutRequest(request.body);
      if (!parsed.ok) throw new ApiError('LB_CP_VALIDATION', 'the rollout is invalid; nothing was started', parsed.errors);
      const [target, pointer] = await Promise.all([deps.store.getVersion(n), deps.store.pointer()]);
      if (target === undefined) throw new ApiError('LB_CP_NOT_FOUND', `version ${n} does not exist`);
      if (target.staged !== true || n <= pointer.version) {
        throw new ApiError(
          'LB_CP_NOT_STAGED',
          target.staged !== true
            ? `version ${n} was not staged: write it with ?stage=true to roll it out`
            : `version ${n} is not above the current version ${pointer.version}: a later write made it stale; stage it again`,
          undefined,
          { currentVersion: pointer.version },
        );
      }
      const now = new Date();
      const record: RolloutRecord = {
        id: newId(now),
        version: n,
        baseline: pointer.version,
        historyId: pointer.historyId,
        steps: parsed.steps,
        abortOn: parsed.abortOn,
        state: 'running',
        step: 1,
        canaries: [],
        stepStartedAt: now.toISOString(),
        bakeStartedAt: null,
        reason: null,
        rollbackVersion: null,
        actor: request.principal?.name ?? 'anonymous',
        createdAt: now.toISOString(),
        updatedAt: now.toISOString(),
      };
      const created = await deps.rollouts.create(record, pointer);
      if (created === 'active') {
        const active = await deps.rollouts.active();
        throw new ApiError('LB_CP_ROLLOUT_ACTIVE', `rollout "${active?.record.id ?? '?'}" is under way; abort it or wait for it to finish`, undefined, {
          rollout: active?.record.id,
        });
      }
      if (created === 'moved') throw new ApiError('LB_CP_CONFLICT', 'the current version changed while the rollout was being started; retry');
      request.audit.version = n;
      return reply.code(201).header('location', `/v1/rollouts/${record.id}`).send(record);
    },
  );

  app.get(
    '/v1/rollouts',
    { config: { access: 'viewer' }, schema: { summary: 'The newest rollouts (100 at most), newest first', tags, querystring: noQuerySchema } },
    async () => ({ rollouts: await deps.rollouts.list(100) }),
  );

  app.get<{ Params: RolloutParams }>(
    '/v1/rollouts/:id',
    {
      config: { access: 'viewer', docs: { response: { 200: ROLLOUT_ANSWER } } },
      schema: { summary: 'One rollout', tags, params: idParams, querystring: noQuerySchema },
    },
    async (request) => (await rolloutOf(deps.rollouts, request.params.id)).record,
  );

  const action = (
    name: 'pause' | 'resume' | 'abort',
    summary: string,
    from: readonly RolloutState[],
    change: (r: RolloutRecord, actor: string) => RolloutRecord,
  ) =>
    app.post<{ Params: RolloutParams }>(
      `/v1/rollouts/:id/${name}`,
      { config: { access: 'operator', docs: { response: { 200: ROLLOUT_ANSWER } } }, schema: { summary, tags, params: idParams, querystring: noQuerySchema } },
      async (request) => {
        request.audit.message = `${name} rollout ${request.params.id}`;
        const actor = request.principal?.name ?? 'anonymous';
        return transition(deps.rollouts, request.params.id, from, (r) => change(r, actor));
      },
    );
  action('pause', 'Hold a rollout where it is: its nodes keep the version, no step is taken', ['running'], (r) => ({ ...r, state: 'paused' }));
  // The step starts again: its bake (what was measured before the pause may no longer hold), and
  // the time its nodes have to run the version.
  action('resume', 'Carry on with a paused rollout', ['paused'], (r) => ({
    ...r,
    state: 'running',
    stepStartedAt: new Date().toISOString(),
    bakeStartedAt: null,
  }));
  action('abort', "Stop a rollout and take every node back to the baseline's config", ['running', 'paused'], (r, actor) => ({
    ...r,
    state: 'aborted',
    reason: `aborted by ${actor}`,
  }));
};
