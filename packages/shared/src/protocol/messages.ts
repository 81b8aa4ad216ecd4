/**
 * TypeScript shapes of the messages in proto/lb/v1/discovery.proto, as @grpc/proto-loader decodes
 * them with PROTO_LOADER_OPTIONS (camelCase fields, uint64 as number, enums as strings, `kind`
 * naming the oneof member that is set).
 */

export type PushKind = 'PUSH_KIND_UNSPECIFIED' | 'PUSH_KIND_CONFIG' | 'PUSH_KIND_HEALTH';

export interface Hello {
  nodeId: string;
  zone: string;
  cachedVersion: number;
  address: string;
  cachedHealthRevision: number;
  cachedHistoryId: string;
  cachedDigest: string;
}

export interface Ack {
  nonce: string;
  version: number;
  kind: PushKind;
}

export interface Nack {
  nonce: string;
  version: number;
  error: string;
  kind: PushKind;
}

export interface Ejection {
  pool: string;
  backendId: string;
  ejected: boolean;
  reason: string;
  untilUnixMs: number;
}

export interface NodeReport {
  ejections: Ejection[];
}

/** One route, pool or backend over a window (see TrafficReport in the proto). */
export interface TrafficSummary {
  pool: string;
  name: string;
  requests: number;
  errors: number;
  meanMs: number;
  /** Per latency bucket (TrafficReport.latencyBoundsMs, then one above every bound); empty for backends. */
  latencyCounts: number[];
}

/** A node's traffic over its last window, sent every few seconds; never awaited. */
export interface TrafficReport {
  windowMs: number;
  configVersion: number;
  historyId: string;
  latencyBoundsMs: number[];
  routes: TrafficSummary[];
  pools: TrafficSummary[];
  backends: TrafficSummary[];
}

export interface NodeMessage {
  hello?: Hello | null;
  ack?: Ack | null;
  nack?: Nack | null;
  report?: NodeReport | null;
  traffic?: TrafficReport | null;
  kind?: 'hello' | 'ack' | 'nack' | 'report' | 'traffic';
}

export interface Resource {
  type: string;
  name: string;
  json: string;
}

export interface ResourceRef {
  type: string;
  name: string;
}

export interface CertificateKey {
  certificate: string;
  privateKeyPem: string;
}

/** Key material of a snapshot (see discovery.proto): private keys by certificate name, session-ticket keys. */
export interface TlsSecrets {
  privateKeys: CertificateKey[];
  sessionTicketKeys: Buffer[];
  /** Why keys the version needs are missing; '' when none is. */
  unavailableReason: string;
}

/** A full snapshot when `configJson` is set; otherwise a delta on `baseVersion` (see the proto). */
export interface ConfigSnapshot {
  version: number;
  nonce: string;
  configJson: string;
  baseVersion: number;
  upserted: Resource[];
  removed: ResourceRef[];
  /** Absent or null: no key material at all (an older control plane, a config without TLS). */
  secrets?: TlsSecrets | null;
  historyId: string;
  digest: string;
}

export type HealthStatus = 'healthy' | 'unhealthy' | 'unknown';

export interface BackendHealth {
  pool: string;
  backendId: string;
  status: HealthStatus | string;
  sinceUnixMs: number;
}

export interface HealthUpdate {
  revision: number;
  nonce: string;
  full: boolean;
  backends: BackendHealth[];
}

export interface ControlMessage {
  config?: ConfigSnapshot | null;
  health?: HealthUpdate | null;
  kind?: 'config' | 'health';
}
