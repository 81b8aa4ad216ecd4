/** What the route plugins need; built by app.ts so tests can pass in-memory stores. */
import type { AuditLog } from '../audit/audit-log.js';
import type { TokenStore } from '../auth/token-store.js';
import type { EjectionReader } from '../health/ejection-store.js';
import type { HealthStore } from '../health/health-store.js';
import type { CpMetrics } from '../metrics.js';
import type { KeyVault } from '../secrets/key-vault.js';
import type { ConfigStore } from '../store/config-store.js';
import type { NodeRecord, NodeStore } from '../store/node-store.js';
import type { Readiness } from '../store/store-reachability.js';
import type { RegistrationStore } from '../store/registration-store.js';
import type { TrafficStats } from '../stats/traffic-stats.js';
import type { RolloutStore } from '../rollout/rollout-store.js';
import type { ConfigWriter } from '../versioning/config-writer.js';

/** Health and self-registration: state that lives beside config, never in a config version. */
export interface HealthDeps {
  store: HealthStore;
  registrations: RegistrationStore;
  ejections: EjectionReader;
}

export interface ApiDeps {
  store: ConfigStore;
  nodes: NodeStore;
  writer: ConfigWriter;
  metrics: CpMetrics;
  health: HealthDeps;
  tokens: TokenStore;
  audit: AuditLog;
  /** /metrics without a token. */
  publicMetrics: boolean;
  /** A change that may let retention prune more happened (a node record was removed). */
  onRetentionChange: () => void;
  /** The nodes this replica holds, as they are now (NodeRegistry.connected); absent: none. */
  heldNodes?: (() => NodeRecord[]) | undefined;
  /** Readiness without an etcd call per probe (store-reachability.ts); absent: /readyz pings the store. */
  readiness?: (() => Readiness) | undefined;
  tls: TlsDeps;
  /** The traffic reports of the nodes this replica holds (GET /v1/stats). */
  traffic: TrafficStats;
  /** Staged rollouts (records in etcd). */
  rollouts: RolloutStore;
}

/** Certificates' private keys and how early GET /v1/certificates warns of expiry. */
export interface TlsDeps {
  vault: KeyVault;
  /** --cert-warn-days. */
  warnDays: number;
}
