/**
 * The health of one backend as the leader records it under /lb/health/<pool>/<backend> and as
 * GET /v1/pools/{pool}/health shows it, and the threshold state machine that moves it.
 *
 * Rules: a backend starts `unknown` (and is routable). Its first successful probe makes it
 * `healthy`; `unhealthyThreshold` failures in a row make it `unhealthy` (from unknown or healthy);
 * `healthyThreshold` successes in a row make an unhealthy backend healthy again. `consecutive`
 * counts the latest run of equal outcomes.
 */
import type { HealthStatus } from '@lb/shared';

export interface LastProbe {
  /** ISO 8601. */
  at: string;
  ok: boolean;
  latencyMs: number;
  detail: string;
}

export interface HealthRecord {
  pool: string;
  backend: string;
  status: HealthStatus;
  /** ISO 8601: when `status` last changed; null while unknown. */
  since: string | null;
  lastProbe: LastProbe | null;
  /** Length of the current run of equal probe outcomes (successes if lastProbe.ok, else failures). */
  consecutive: number;
}

export interface Thresholds {
  healthyThreshold: number;
  unhealthyThreshold: number;
}

export function initialRecord(pool: string, backend: string): HealthRecord {
  return { pool, backend, status: 'unknown', since: null, lastProbe: null, consecutive: 0 };
}

/** The record after one probe result; never mutates `previous`. */
export function nextRecord(previous: HealthRecord, probe: LastProbe, thresholds: Thresholds): HealthRecord {
  const sameRun = previous.lastProbe !== null && previous.lastProbe.ok === probe.ok;
  const consecutive = sameRun ? previous.consecutive + 1 : 1;
  let status = previous.status;
  if (probe.ok) {
    if (status === 'unknown' || (status === 'unhealthy' && consecutive >= thresholds.healthyThreshold)) status = 'healthy';
  } else if (status !== 'unhealthy' && consecutive >= thresholds.unhealthyThreshold) {
    status = 'unhealthy';
  }
  return { ...previous, status, since: status === previous.status ? previous.since : probe.at, lastProbe: probe, consecutive };
}
