/**
 * The Fastify application: routes, problem+json error handling and HTTP metrics. A factory, so
 * unit tests drive it with inject() over in-memory stores and no port.
 */
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Logger } from '@lb/shared';
import { backendRoutes } from './api/backends.js';
import { configRoutes } from './api/config.js';
import type { ApiDeps, HealthDeps } from './api/deps.js';
import { healthRoutes } from './api/health.js';
import { MemoryEjectionStore } from './health/ejection-store.js';
import { MemoryHealthStore } from './health/health-store.js';
import { MemoryRegistrationStore } from './store/registration-store.js';
import { nodeRoutes } from './api/nodes.js';
import { opsRoutes } from './api/ops.js';
import { poolRoutes } from './api/pools.js';
import { installProblemHandling } from './api/problem.js';
import { routeRoutes } from './api/routes.js';
import { versionRoutes } from './api/versions.js';
import { CpMetrics } from './metrics.js';
import type { ConfigStore, NodeStore } from './store/config-store.js';
import { ConfigWriter } from './versioning/config-writer.js';

export interface AppOptions {
  store: ConfigStore;
  nodes: NodeStore;
  metrics?: CpMetrics;
  writer?: ConfigWriter;
  /** Health, registrations and ejection reports; absent: empty in-memory ones (tests). */
  health?: HealthDeps;
  /** Absent: no logging (tests). */
  logger?: Logger;
  /** Largest accepted body; etcd's own limit (--max-request-bytes, 1.5 MiB by default) also applies. */
  bodyLimit?: number;
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const app = (options.logger
    ? // Per-request logging stays off: metrics count requests, and the log is for events.
      Fastify({
        loggerInstance: options.logger,
        logController: new LogController({ disableRequestLogging: true }),
        bodyLimit: options.bodyLimit ?? 8 * 1024 * 1024,
      })
    : Fastify({ logger: false, bodyLimit: options.bodyLimit ?? 8 * 1024 * 1024 })) as unknown as FastifyInstance;
  const deps: ApiDeps = {
    store: options.store,
    nodes: options.nodes,
    metrics: options.metrics ?? new CpMetrics(),
    writer: options.writer ?? new ConfigWriter(options.store),
    health: options.health ?? { store: new MemoryHealthStore(), registrations: new MemoryRegistrationStore(), ejections: new MemoryEjectionStore() },
  };

  installProblemHandling(app);
  app.addHook('onResponse', async (request, reply) => {
    // The route template, never the raw URL, so metric cardinality stays bounded.
    const route = request.routeOptions.url ?? 'unmatched';
    deps.metrics.httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
    request.log.debug({ method: request.method, url: request.url, status: reply.statusCode, ms: reply.elapsedTime }, 'request');
  });

  await app.register(opsRoutes, deps);
  await app.register(configRoutes, deps);
  await app.register(poolRoutes, deps);
  await app.register(backendRoutes, deps);
  await app.register(healthRoutes, deps);
  await app.register(routeRoutes, deps);
  await app.register(versionRoutes, deps);
  await app.register(nodeRoutes, deps);
  return app;
}
