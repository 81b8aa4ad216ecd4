/**
 * The Fastify application: routes, access control, the audit trail, problem+json error handling,
 * the OpenAPI document and HTTP metrics. A factory, so unit tests drive it with inject() over
 * in-memory stores and no port.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Logger } from '@lb/shared';
import { auditRoutes } from './api/audit.js';
import { backendRoutes } from './api/backends.js';
import { certificateRoutes } from './api/certificates.js';
import { configRoutes } from './api/config.js';
import type { ApiDeps, HealthDeps, TlsDeps } from './api/deps.js';
import { healthRoutes } from './api/health.js';
import { listenerRoutes } from './api/listeners.js';
import { nodeRoutes } from './api/nodes.js';
import { registerOpenApi, registerOpenApiRoutes } from './api/openapi.js';
import { registerDashboard } from './api/dashboard.js';
import { opsRoutes } from './api/ops.js';
import { poolRoutes } from './api/pools.js';
import { installProblemHandling } from './api/problem.js';
import { RouteTable } from './api/route-table.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route of the app with its methods (405 answers, the OpenAPI coverage test). */
    routeTable: RouteTable;
  }
}
import { routeRoutes } from './api/routes.js';
import { statsRoutes } from './api/stats.js';
import { rolloutRoutes } from './api/rollouts.js';
import { MemoryRolloutStore, type RolloutStore } from './rollout/rollout-store.js';
import { TrafficStats } from './stats/traffic-stats.js';
import { tokenRoutes } from './api/tokens.js';
import { versionRoutes } from './api/versions.js';
import { MemoryAuditLog, type AuditLog } from './audit/audit-log.js';
import { AuditRecorder } from './audit/audit-recorder.js';
import { installAccessControl } from './auth/access-control.js';
import type { Authenticator } from './auth/authenticator.js';
import type { TokenStore } from './auth/token-store.js';
import { MemoryEjectionStore } from './health/ejection-store.js';
import { MemoryHealthStore } from './health/health-store.js';
import { CpMetrics } from './metrics.js';
import type { ConfigStore } from './store/config-store.js';
import type { NodeRecord, NodeStore } from './store/node-store.js';
import type { Readiness } from './store/store-reachability.js';
import { MemoryRegistrationStore } from './store/registration-store.js';
import { MemoryKeyStore } from './secrets/key-store.js';
import { KeyVault } from './secrets/key-vault.js';
import { certificateRules } from './tls/certificate-rules.js';
import { ConfigWriter, DEFAULT_MAX_CONFIG_BYTES } from './versioning/config-writer.js';

export interface AppOptions {
  store: ConfigStore;
  nodes: NodeStore;
  /** Who is calling (bearer tokens) and the tokens /v1/tokens manages. */
  auth: { authenticator: Authenticator; tokens: TokenStore };
  /** Absent: an in-memory audit trail (tests). */
  audit?: AuditLog;
  /** Serve /metrics without a token (for scrapers); default false. */
  publicMetrics?: boolean;
  /** Called after a change that may let retention prune more (a node removed). */
  onRetentionChange?: () => void;
  /** The nodes this replica holds, fresher than what it published (NodeRegistry.connected). */
  heldNodes?: () => NodeRecord[];
  /** What /readyz answers (store-reachability.ts); absent: it pings the store on every call. */
  readiness?: () => Readiness;
  metrics?: CpMetrics;
  writer?: ConfigWriter;
  /** Health, registrations and ejection reports; absent: empty in-memory ones (tests). */
  health?: HealthDeps;
  /** Absent: no logging (tests). */
  logger?: Logger;
  /** Largest accepted body. Default: twice the writer's config limit, at least 8 MiB. */
  bodyLimit?: number;
  /** The version shown in the OpenAPI document. */
  version?: string;
  /** Private keys and expiry warnings; absent: a vault that keeps no keys, warnings at 21 days (tests). */
  tls?: TlsDeps;
  /** The traffic reports of the nodes this replica holds; absent: an empty one (tests). */
  traffic?: TrafficStats;
  /** Staged rollouts; absent: kept in memory (tests). */
  rollouts?: RolloutStore;
  /** Serve HTTPS with this certificate chain and key (--http-tls-cert/--http-tls-key); absent: plain HTTP. */
  https?: { cert: Buffer; key: Buffer };
}

/** --cert-warn-days' default. */
export const DEFAULT_CERT_WARN_DAYS = 21;

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

/** The caller's X-Request-Id when it is a sane token, else a new one: it ends up in logs and etcd. */
function requestIdOf(request: IncomingMessage): string {
  const given = request.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID_RE.test(given) ? given : randomUUID();
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const common = {
    // A config at the limit may come pretty-printed; the writer refuses what is too large once parsed.
    bodyLimit: options.bodyLimit ?? Math.max(8 * 1024 * 1024, 2 * (options.writer?.maxConfigBytes ?? DEFAULT_MAX_CONFIG_BYTES)),
    genReqId: requestIdOf,
    // Unknown query parameters are errors, not silently dropped; verbose errors name what is allowed.
    ajv: { customOptions: { removeAdditional: false, verbose: true } },
  } as const;
  const transport = options.https !== undefined ? { https: { cert: options.https.cert, key: options.https.key } } : {};
  const app = (options.logger
    ? // Per-request logging stays off: metrics count requests, the audit trail records writes.
      Fastify({ ...common, ...transport, loggerInstance: options.logger, logController: new LogController({ disableRequestLogging: true }) })
    : Fastify({ ...common, ...transport, logger: false })) as unknown as FastifyInstance;
  const tls = options.tls ?? { vault: new KeyVault(new MemoryKeyStore(), undefined), warnDays: DEFAULT_CERT_WARN_DAYS };
  const deps: ApiDeps = {
    store: options.store,
    nodes: options.nodes,
    metrics: options.metrics ?? new CpMetrics(),
    writer: options.writer ?? new ConfigWriter(options.store, { verify: certificateRules(tls.vault) }),
    tls,
    health: options.health ?? { store: new MemoryHealthStore(), registrations: new MemoryRegistrationStore(), ejections: new MemoryEjectionStore() },
    tokens: options.auth.tokens,
    audit: options.audit ?? new MemoryAuditLog(),
    publicMetrics: options.publicMetrics ?? false,
    onRetentionChange: options.onRetentionChange ?? (() => undefined),
    readiness: options.readiness,
    heldNodes: options.heldNodes,
    traffic: options.traffic ?? new TrafficStats(),
    rollouts: options.rollouts ?? new MemoryRolloutStore(() => options.store.pointer()),
  };

  const routes = new RouteTable();
  routes.install(app);
  app.decorate('routeTable', routes);
  installProblemHandling(app, routes);
  // The audit note exists before access control runs, so a refused request is recorded too.
  const recorder = new AuditRecorder({ log: deps.audit, ...(options.logger ? { logger: options.logger } : {}) });
  recorder.install(app);
  app.addHook('onClose', async () => recorder.flush());
  installAccessControl(app, options.auth.authenticator);
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.addHook('onResponse', async (request, reply) => {
    // The route template, never the raw URL, so metric cardinality stays bounded.
    const route = request.routeOptions.url ?? 'unmatched';
    deps.metrics.httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
    request.log.debug({ method: request.method, url: request.url, status: reply.statusCode, ms: reply.elapsedTime }, 'request');
  });

  await registerOpenApi(app, options.version ?? '0.0.0');
  await app.register(opsRoutes, deps);
  await app.register(configRoutes, deps);
  await app.register(poolRoutes, deps);
  await app.register(backendRoutes, deps);
  await app.register(healthRoutes, deps);
  await app.register(routeRoutes, deps);
  await app.register(listenerRoutes, deps);
  await app.register(certificateRoutes, deps);
  await app.register(versionRoutes, deps);
  await app.register(nodeRoutes, deps);
  await app.register(statsRoutes, deps);
  await app.register(rolloutRoutes, deps);
  await app.register(tokenRoutes, deps);
  await app.register(auditRoutes, deps);
  await registerOpenApiRoutes(app);
  await registerDashboard(app);
  return app;
}
