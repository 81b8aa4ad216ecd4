/**
 * What a probe is: one attempt to reach one backend with a deadline, answering ok or not with a
 * short reason. http-probe.ts, tcp-probe.ts and grpc-probe.ts implement it; the scheduler picks one
 * by the pool's `healthCheck.type`.
 */
import type { HealthCheck } from '@lb/shared';

export interface ProbeTarget {
  pool: string;
  backendId: string;
  /** The backend's `host:port` from config. */
  address: string;
  /** The pool's health check with every default filled in. */
  check: HealthCheck;
}

export interface ProbeResult {
  ok: boolean;
  latencyMs: number;
  /** Why it failed, or what it saw (`200`, `SERVING`, `connected`). */
  detail: string;
}

export interface ProbeOptions {
  timeoutMs: number;
  /** Sent as X-LB-Probe-Replica (http) so backends and tests can tell which replica probes. */
  replica: string;
}

export type Probe = (target: ProbeTarget, options: ProbeOptions) => Promise<ProbeResult>;

/** Splits `host:port` / `[v6]:port` and applies the check's port override. */
export function probeEndpoint(target: ProbeTarget): { host: string; port: number } {
  const address = target.address;
  const colon = address.lastIndexOf(':');
  let host = address.slice(0, colon);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host, port: target.check.port ?? Number(address.slice(colon + 1)) };
}

/** Message of an error, with its code when it has one (ECONNREFUSED, …). */
export function errorDetail(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return code !== undefined && !message.includes(code) ? `${code}: ${message}` : message;
}
