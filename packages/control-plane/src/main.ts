#!/usr/bin/env node
/** lb-control-plane: wires etcd, the REST API and the gRPC push server together. Nothing else. */
import { createRequire } from 'node:module';
import { createLogger, FlagError, runMain, usage } from '@lb/shared';
import { EtcdAuditLog } from './audit/etcd-audit-log.js';
import { Authenticator } from './auth/authenticator.js';
import { ensureFirstAdminToken, readOrCreateAdminTokenFile } from './auth/bootstrap-admin.js';
import { EtcdTokenStore } from './auth/etcd-token-store.js';
import { FailureThrottle } from './auth/failure-throttle.js';
import { readBootstrapConfig, seedEmptyStore } from './bootstrap/bootstrap-config.js';
import { Retention } from './retention/retention.js';
import { ConfigWriter } from './versioning/config-writer.js';
import { COMMAND, FLAGS, parseControlPlaneFlags } from './flags.js';
import { CpMetrics } from './metrics.js';
import { ConfigFeed } from './push/config-feed.js';
import { EtcdEjectionStore } from './health/ejection-store.js';
import { HealthChecker } from './health/health-checker.js';
import { HealthFeed } from './health/health-feed.js';
import { HealthMetrics } from './health/health-metrics.js';
import { EtcdHealthStore } from './health/health-store.js';
import { grpcProbe } from './health/grpc-probe.js';
import { httpProbe } from './health/http-probe.js';
import { LeaderElection } from './health/leader-election.js';
import { tcpProbe } from './health/tcp-probe.js';
import { MergedConfigSource } from './push/merged-config.js';
import { NodeRegistry } from './push/node-registry.js';
import { StreamServer } from './push/stream-server.js';
import { RolloutConductor } from './rollout/rollout-conductor.js';
import { RolloutPlanner } from './rollout/rollout-planner.js';
import { EtcdRolloutStore } from './rollout/rollout-store.js';
import { StagedConfigSource } from './rollout/staged-config.js';
import { TrafficStats } from './stats/traffic-stats.js';
import { createEtcdClient } from './store/etcd-client.js';
import { EtcdConfigStore } from './store/etcd-config-store.js';
import { EtcdNodeStore } from './store/etcd-node-store.js';
import { StoreReachability } from './store/store-reachability.js';
import { EtcdRegistrationStore } from './store/registration-store.js';
import { EtcdKeyStore } from './secrets/etcd-key-store.js';
import { KeyVault } from './secrets/key-vault.js';
import { SecretBox, SecretKeyFileError } from './secrets/secret-box.js';
import { certificateRules } from './tls/certificate-rules.js';
import { pushSecurity } from './tls/push-security.js';
import { SnapshotSecrets } from './tls/snapshot-secrets.js';
import { EtcdTicketKeyStore, TicketKeyRing } from './tls/ticket-keys.js';
import * as grpc from '@grpc/grpc-js';

/** A shutdown that takes longer than this is forced (and reported with exit code 1). */
const SHUTDOWN_TIMEOUT_MS = 10_000;

async function main(): Promise<void> {
  const settings = parseControlPlaneFlags(process.argv.slice(2));
  if (settings.help) {
    process.stdout.write(`${usage(COMMAND, FLAGS)}\n`);
    return;
  }
  const logger = createLogger(COMMAND).child({ replica: settings.replicaId });
  // Files are read before anything starts: a bad one is a usage error (exit 2), not a half-started replica.
  const adminFile = settings.adminTokenFile === undefined ? undefined : readOrCreateAdminTokenFile(settings.adminTokenFile);
  if (adminFile?.created) logger.warn({ file: settings.adminTokenFile }, 'wrote a new bootstrap admin secret to --admin-token-file');
  const bootstrapConfig = settings.bootstrapConfig === undefined ? undefined : readBootstrapConfig(settings.bootstrapConfig);
  let secretBox: SecretBox | undefined;
  try {
    secretBox = settings.secretsKeyFile === undefined ? undefined : SecretBox.fromFile(settings.secretsKeyFile);
  } catch (err) {
    if (err instanceof SecretKeyFileError) throw new FlagError(`--secrets-key-file: ${err.message}`);
    throw err;
  }
  if (bootstrapConfig !== undefined && bootstrapConfig.keys.length > 0 && secretBox === undefined)
    throw new FlagError(`--bootstrap-config ${settings.bootstrapConfig} holds private keys: give the control plane --secrets-key-file to store them`);
  const { version } = createRequire(import.meta.url)('../package.json') as { version: string };
  let stopping = false;
  const client = createEtcdClient({ hosts: settings.etcdHosts, ...(settings.tls.etcd !== undefined ? { tls: settings.tls.etcd } : {}) });
  const store = new EtcdConfigStore({ client, prefix: settings.etcdPrefix, logger });
  const nodeStore = new EtcdNodeStore({ client, prefix: settings.etcdPrefix, replica: settings.replicaId, logger });
  const metrics = new CpMetrics({ defaultMetrics: true });

  // A store from before manifests is moved over once; etcd down now is retried by the feed below.
  await store.migrateLegacyVersions().catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'could not check for the old config layout'));
  // If etcd is down now the feed keeps retrying and /readyz answers 503 meanwhile: no crash loop.
  const feed = new ConfigFeed({ store, logger, metrics });
  feed.start();
  metrics.certificates = () => feed.latest()?.config;
  // Self-registered backends are merged into what is pushed and probed, never into versions.
  const registrations = new EtcdRegistrationStore(client, settings.etcdPrefix, logger);
  const merged = new MergedConfigSource({ config: feed, registrations, logger });
  merged.start();
  const vault = new KeyVault(new EtcdKeyStore(client, settings.etcdPrefix), secretBox);
  // Without a secrets key there is nothing to seal a shared ticket key with: each node then keeps its own.
  const tickets =
    secretBox === undefined
      ? undefined
      : new TicketKeyRing({
          store: new EtcdTicketKeyStore(client, settings.etcdPrefix, logger),
          box: secretBox,
          rotationMs: settings.ticketRotationHours * 3_600_000,
          logger,
        });
  tickets?.start();
  // What nodes get (and probes use): the merged config plus the keys it needs.
  const pushed = new SnapshotSecrets({ config: merged, vault, ...(tickets !== undefined ? { tickets } : {}), logger });
  pushed.start();
  // A rollout's staged version goes through the same chain, to the rollout's nodes only.
  const rollouts = new EtcdRolloutStore(client, settings.etcdPrefix, logger);
  const staged = new StagedConfigSource(store, logger);
  const stagedMerged = new MergedConfigSource({ config: staged, registrations, logger });
  stagedMerged.start();
  const stagedPushed = new SnapshotSecrets({ config: stagedMerged, vault, ...(tickets !== undefined ? { tickets } : {}), logger });
  stagedPushed.start();
  const planner = new RolloutPlanner({ store: rollouts, staged, views: stagedPushed, logger });
  planner.start();
  const healthStore = new EtcdHealthStore(client, settings.etcdPrefix, logger);
  const healthFeed = new HealthFeed({ store: healthStore, logger });
  healthFeed.start();
  const ejections = new EtcdEjectionStore(client, settings.etcdPrefix, logger);
  const election = new LeaderElection({ client, prefix: settings.etcdPrefix, replica: settings.replicaId, logger, ttlSeconds: settings.leaderTtlSeconds });
  const checker = new HealthChecker({
    config: pushed,
    leadership: election,
    store: healthStore,
    probes: { http: httpProbe, tcp: tcpProbe, grpc: grpcProbe },
    replica: settings.replicaId,
    logger,
    metrics: new HealthMetrics(metrics.registry),
  });
  checker.start();
  election.start();
  const grpcTls = settings.tls.grpc;
  const registry = new NodeRegistry({ store: nodeStore, replica: settings.replicaId, logger, metrics, flushIntervalMs: settings.nodeFlushMs });
  metrics.nodeVersions = () => registry.versions();
  const traffic = new TrafficStats();
  const streams = new StreamServer({
    config: pushed,
    traffic,
    planner,
    health: healthFeed,
    reports: ejections,
    registry,
    logger,
    metrics,
    security: pushSecurity({ mutualTls: grpcTls !== undefined, devPlaintextSecrets: settings.tls.devPlaintextSecrets }),
    ...(grpcTls !== undefined
      ? { credentials: grpc.ServerCredentials.createSsl(grpcTls.clientCa, [{ cert_chain: grpcTls.cert, private_key: grpcTls.key }], true) }
      : {}),
    versionSeen: (seen) => feed.noticeVersion(seen),
  });
  // Nodes are admitted as early as possible: after a restart a thousand of them are retrying with
  // growing backoffs, and every second the port stays closed lengthens the storm's tail. The REST
  // app (Fastify and its schemas: a third of the start) is loaded and built after this.
  try {
    await streams.listen(settings.grpc.host, settings.grpc.port);
  } catch (err) {
    logger.fatal({ err }, 'cannot listen');
    process.exit(1);
  }
  // One replica drives rollouts (its own election); every replica follows the record.
  const rolloutElection = new LeaderElection({
    client,
    prefix: settings.etcdPrefix,
    replica: settings.replicaId,
    logger,
    ttlSeconds: settings.leaderTtlSeconds,
    name: 'rollouts',
  });
  const tokens = new EtcdTokenStore({ client, prefix: settings.etcdPrefix, logger });
  tokens.start();
  if (adminFile === undefined) {
    void ensureFirstAdminToken({ tokens, logger, print: (text) => process.stderr.write(text), isStopped: () => stopping });
  }
  const authenticator = new Authenticator({ tokens, throttle: new FailureThrottle(), ...(adminFile ? { bootstrapSecret: adminFile.secret } : {}) });
  const audit = new EtcdAuditLog(client, settings.etcdPrefix);
  const retention = new Retention({
    store,
    nodes: nodeStore,
    audit,
    logger,
    keepVersions: settings.keepVersions,
    nodeRetentionMs: settings.nodeRetentionSeconds * 1000,
    keepAuditEntries: settings.keepAuditEntries,
    knownVersion: () => feed.latest()?.version,
  });
  // Every new version may push an old one past --keep-versions.
  feed.subscribe(() => retention.request());
  retention.start();
  const writer = new ConfigWriter(store, { verify: certificateRules(vault), maxConfigBytes: settings.maxConfigBytes });
  const conductor = new RolloutConductor({
    store: rollouts,
    configs: store,
    writer,
    nodes: nodeStore,
    heldNodes: () => registry.connected(),
    traffic,
    leadership: rolloutElection,
    watched: () => planner.current(),
    replica: settings.replicaId,
    logger,
  });
  conductor.start();
  rolloutElection.start();
  if (bootstrapConfig !== undefined && settings.bootstrapConfig !== undefined) {
    void seedEmptyStore({
      writer,
      config: bootstrapConfig.config,
      keys: bootstrapConfig.keys,
      vault,
      path: settings.bootstrapConfig,
      logger,
      isStopped: () => stopping,
    });
  }
  const reachability = new StoreReachability({ ping: () => store.ping(), graceMs: settings.etcdGraceSeconds * 1000 });
  reachability.start();
  const { buildApp } = await import('./app.js');
  const app = await buildApp({
    readiness: () => reachability.state(),
    heldNodes: () => registry.connected(),
    store,
    nodes: nodeStore,
    writer,
    metrics,
    logger,
    version,
    health: { store: healthStore, registrations, ejections },
    auth: { authenticator, tokens },
    audit,
    traffic,
    rollouts,
    publicMetrics: settings.publicMetrics,
    onRetentionChange: () => retention.request(),
    tls: { vault, warnDays: settings.certWarnDays },
    ...(settings.tls.http !== undefined ? { https: settings.tls.http } : {}),
  });

  try {
    await app.listen({ host: settings.http.host, port: settings.http.port });
  } catch (err) {
    logger.fatal({ err }, 'cannot listen');
    process.exit(1);
  }
  logger.info(
    {
      http: settings.http,
      grpc: settings.grpc,
      etcd: settings.etcdHosts,
      prefix: settings.etcdPrefix,
      grpcTls: grpcTls !== undefined ? 'mutual' : 'off',
      httpTls: settings.tls.http !== undefined,
      secretsKey: secretBox?.kid ?? 'none',
    },
    'control plane started',
  );
  if (grpcTls === undefined)
    logger.warn(
      { devPlaintextSecrets: settings.tls.devPlaintextSecrets },
      'gRPC to data planes is plaintext: private keys are pushed to no node (but loopback ones with --dev-plaintext-secrets)',
    );

  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      logger.error('shutdown took too long; exiting anyway');
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS);
    force.unref();
    void (async () => {
      checker.stop(); // stop probing before resigning, so two replicas never probe together
      await election.stop(); // resign: another replica takes over health checks at once
      conductor.stop();
      await rolloutElection.stop(); // and rollouts
      await app.close(); // stop accepting REST requests, finish those in flight (and their audit entries)
      retention.stop();
      reachability.stop();
      await tokens.close();
      await streams.close(); // end every DP stream so the nodes reconnect to another replica
      await registry.flush().catch(() => undefined); // what the nodes last ran, for GET /v1/nodes on the others
      registry.stop();
      feed.stop();
      planner.stop();
      stagedPushed.stop();
      stagedMerged.stop();
      pushed.stop();
      tickets?.stop();
      merged.stop();
      healthFeed.stop();
      await ejections.close();
      await nodeStore.close(); // revoke the lease: this replica's node records vanish at once
      await store.close();
      client.close();
      logger.info('stopped');
      process.exit(0);
    })().catch((err: unknown) => {
      logger.error({ err }, 'error during shutdown');
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

await runMain(COMMAND, FLAGS, main);
