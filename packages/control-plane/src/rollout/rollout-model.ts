/**
 * What a staged rollout is (POST /v1/versions/{n}/rollout): the steps, the abort conditions and
 * the record every replica follows from etcd (rollout-store.ts). One rollout is active at a time.
 */
import type { FieldError } from '@lb/shared';

/** A step names how many nodes run the new version once it is reached: a count, or a share of the connected nodes. */
export type RolloutStep = ({ nodes: number } | { percent: number }) & {
  /** How long the step's nodes run the version (all of them ACKed it) before the next step. */
  bakeSeconds: number;
};

export interface AbortOn {
  /** A node of the rollout NACKed the version. */
  nack: boolean;
  /** The rollout nodes' error rate exceeds the others' by more than this many percentage points. */
  errorRatePoints?: number;
  /** The rollout nodes' p99 latency (routes: arrival to the end of the response) exceeds this. */
  p99Ms?: number;
  /** Error rate and p99 are judged only over at least this many requests of the rollout nodes. */
  minRequests: number;
  /**
   * A step whose nodes have not all run the version this long after it started aborts the rollout
   * (a node that neither ACKs nor NACKs would otherwise hold it at that step for ever). Records
   * written before this field existed take the default.
   */
  ackTimeoutSeconds?: number;
}

export type RolloutState = 'running' | 'paused' | 'done' | 'aborted';

export interface RolloutRecord {
  id: string;
  /** The staged version rolled out. */
  version: number;
  /** The version current when the rollout started: what the other nodes keep running. */
  baseline: number;
  historyId: string;
  steps: RolloutStep[];
  abortOn: AbortOn;
  state: RolloutState;
  /** The step under way, from 1. */
  step: number;
  /** The nodes that get `version`, in the order they were added. */
  canaries: string[];
  /** When the current step's nodes were chosen. */
  stepStartedAt: string;
  /** When every node of the current step ran `version` (the bake starts); null before. */
  bakeStartedAt: string | null;
  /** Why it was aborted (a NACK, a breach, an operator). */
  reason: string | null;
  /** Aborted: the version that took every node back (its content is the baseline's); null until committed. */
  rollbackVersion: number | null;
  actor: string;
  createdAt: string;
  updatedAt: string;
}

export const DEFAULT_MIN_REQUESTS = 20;
export const DEFAULT_ACK_TIMEOUT_SECONDS = 600;
const MAX_STEPS = 20;
const MAX_BAKE_SECONDS = 7 * 86_400;

/** How many nodes `step` puts on the new version out of `connected` (at least one). */
export function nodesFor(step: RolloutStep, connected: number): number {
  const wanted = 'nodes' in step ? step.nodes : Math.ceil((step.percent * connected) / 100);
  return Math.max(1, Math.min(connected, wanted));
}

/** Whether a rollout in this state still decides what some nodes run. */
export function isLive(state: RolloutState): boolean {
  return state === 'running' || state === 'paused';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function unknownFields(value: Record<string, unknown>, allowed: readonly string[], at: string, errors: FieldError[]): void {
  for (const key of Object.keys(value))
    if (!allowed.includes(key)) errors.push({ field: `${at}${key}`, message: `unknown field; allowed: ${allowed.join(', ')}` });
}

function number(value: unknown, field: string, min: number, max: number, integer: boolean, errors: FieldError[]): number | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    errors.push({ field, message: `must be ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}` });
    return undefined;
  }
  return value;
}

/** The body of POST /v1/versions/{n}/rollout, checked whole: every bad field is named. */
export function parseRolloutRequest(body: unknown): { ok: true; steps: RolloutStep[]; abortOn: AbortOn } | { ok: false; errors: FieldError[] } {
  const errors: FieldError[] = [];
  if (!isObject(body)) return { ok: false, errors: [{ field: '', message: 'must be an object {steps, abortOn?}' }] };
  unknownFields(body, ['steps', 'abortOn'], '', errors);
  const steps: RolloutStep[] = [];
  if (!Array.isArray(body.steps) || body.steps.length === 0 || body.steps.length > MAX_STEPS) {
    errors.push({ field: 'steps', message: `must be a list of 1 to ${MAX_STEPS} steps such as {"nodes": 1, "bakeSeconds": 60} or {"percent": 25}` });
  } else {
    for (const [i, raw] of (body.steps as unknown[]).entries()) {
      const at = `steps[${i}]`;
      if (!isObject(raw)) {
        errors.push({ field: at, message: 'must be an object with nodes or percent, and bakeSeconds' });
        continue;
      }
      unknownFields(raw, ['nodes', 'percent', 'bakeSeconds'], `${at}.`, errors);
      const bakeSeconds = raw.bakeSeconds === undefined ? 0 : number(raw.bakeSeconds, `${at}.bakeSeconds`, 0, MAX_BAKE_SECONDS, true, errors);
      if ((raw.nodes === undefined) === (raw.percent === undefined)) {
        errors.push({ field: at, message: 'needs exactly one of nodes (a count) and percent (a share of the connected nodes)' });
        continue;
      }
      if (raw.nodes !== undefined) {
        const nodes = number(raw.nodes, `${at}.nodes`, 1, 100_000, true, errors);
        if (nodes !== undefined && bakeSeconds !== undefined) steps.push({ nodes, bakeSeconds });
      } else {
        const percent = number(raw.percent, `${at}.percent`, 0.01, 100, false, errors);
        if (percent !== undefined && bakeSeconds !== undefined) steps.push({ percent, bakeSeconds });
      }
    }
  }
  const abortOn: AbortOn = { nack: true, minRequests: DEFAULT_MIN_REQUESTS, ackTimeoutSeconds: DEFAULT_ACK_TIMEOUT_SECONDS };
  if (body.abortOn !== undefined) {
    if (!isObject(body.abortOn))
      errors.push({ field: 'abortOn', message: 'must be an object {nack?, errorRatePoints?, p99Ms?, minRequests?, ackTimeoutSeconds?}' });
    else {
      const raw = body.abortOn;
      unknownFields(raw, ['nack', 'errorRatePoints', 'p99Ms', 'minRequests', 'ackTimeoutSeconds'], 'abortOn.', errors);
      if (raw.nack !== undefined) {
        if (typeof raw.nack !== 'boolean') errors.push({ field: 'abortOn.nack', message: 'must be true or false' });
        else abortOn.nack = raw.nack;
      }
      if (raw.errorRatePoints !== undefined) {
        const points = number(raw.errorRatePoints, 'abortOn.errorRatePoints', 0, 100, false, errors);
        if (points !== undefined) abortOn.errorRatePoints = points;
      }
      if (raw.p99Ms !== undefined) {
        const p99 = number(raw.p99Ms, 'abortOn.p99Ms', 0.001, 3_600_000, false, errors);
        if (p99 !== undefined) abortOn.p99Ms = p99;
      }
      if (raw.minRequests !== undefined) {
        const min = number(raw.minRequests, 'abortOn.minRequests', 1, 1_000_000_000, true, errors);
        if (min !== undefined) abortOn.minRequests = min;
      }
      if (raw.ackTimeoutSeconds !== undefined) {
        const seconds = number(raw.ackTimeoutSeconds, 'abortOn.ackTimeoutSeconds', 1, MAX_BAKE_SECONDS, true, errors);
        if (seconds !== undefined) abortOn.ackTimeoutSeconds = seconds;
      }
    }
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, steps, abortOn };
}
