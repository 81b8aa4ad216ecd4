/**
 * What a probe is: one attempt to reach one backend with a deadline, answering ok or not with a
 * short reason. http-probe.ts, tcp-probe.ts and grpc-probe.ts implement it; the scheduler picks one
 * by the pool's `healthCheck.type`.
 */
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { HealthCheck } from '@lb/shared';

/** A pool's `tls`, resolved: what a probe needs to reach its backends the way data planes do. */
export interface ProbeTls {
  /** PEM CA certificate(s) the backend's chain must end in; absent: the system's CAs. */
  ca?: string;
  /** Client certificate (PEM chain) and its key, for backends that want mutual TLS. */
  cert?: string;
  key?: string;
  servername?: string;
  verify: boolean;
  /** Changes with any of the above (a digest, never the key): a changed one restarts the target's probing. */
  id: string;
}

export interface ProbeTarget {
  pool: string;
  backendId: string;
  /** The backend's `host:port` from config. */
  address: string;
  /** The pool's health check with every default filled in. */
  check: HealthCheck;
  /** TLS to the backend (the pool's `tls`); absent: plain. */
  tls?: ProbeTls;
}

/** tls.connect options for a probe of `host` with `tls`: the name checked is serverName, else the host when it is a name. */
export function probeTlsOptions(tls: ProbeTls, host: string): ConnectionOptions {
  const servername = tls.servername ?? (isIP(host) === 0 ? host : undefined);
  return {
    ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
    ...(tls.cert !== undefined && tls.key !== undefined ? { cert: tls.cert, key: tls.key } : {}),
    ...(servername !== undefined ? { servername } : {}),
    rejectUnauthorized: tls.verify,
  };
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
