#!/usr/bin/env node
/**
 * `lb-data-plane`: flags → DataPlaneNode (--workers 1) or a ClusterPrimary and its workers
 * (--workers N; a worker process runs this same file and gets here with cluster.isWorker), and
 * signals → graceful stop. Nothing else lives here.
 */
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { availableParallelism, hostname } from 'node:os';
import { choiceFlag, createLogger, FlagError, hostPortFlag, listFlag, parseFlags, runMain, usage, type FlagSpec, type Logger } from '@lb/shared';
import { AccessLog } from './access-log/access-log.js';
import { ClusterPrimary } from './cluster/primary.js';
import { runWorker } from './cluster/worker.js';
import { DEFAULT_BACKEND_LIMIT } from './metrics.js';
import { DataPlaneNode } from './node.js';
import { DEFAULT_TRAFFIC_REPORT_MS } from './push/traffic-reporter.js';
import { UNDERSCORE_HEADERS } from './proxy/hop-by-hop.js';
import { DEFAULT_HTTP_SERVER, HTTP_SERVERS, PROXY_DEFAULTS, type ProxyServerOptions } from './proxy/proxy-server.js';
import { nativeHttp1 } from './http1/parser-self-test.js';
import { DEFAULT_TCP_IO, rawTcp, TCP_IOS, type TcpIo } from './runtime/raw-tcp-self-test.js';
import { DEFAULT_UPSTREAM_CLIENT, UPSTREAM_CLIENTS, UPSTREAM_DEFAULTS } from './upstream/upstream-pools.js';

const COMMAND = 'lb-data-plane';

const FLAGS = {
  'control-plane': { description: 'control plane gRPC address(es), HOST:PORT[,HOST:PORT]', required: true },
  listen: { description: 'client traffic listener HOST:PORT (routes name it "default")', default: '127.0.0.1:8000' },
  'bind-address': { description: 'address the listeners of the config bind (default: the host of --listen; 0.0.0.0 for every interface)' },
  'tls-ca': {
    description: "PEM CA certificate(s) the control plane's gRPC certificate must chain to; with --tls-cert and --tls-key the stream uses mutual TLS",
  },
  'tls-cert': { description: 'PEM certificate of this node for mutual TLS to the control plane; its CN or a DNS name must be the node id' },
  'tls-key': { description: 'PEM private key of --tls-cert' },
  'admin-listen': { description: 'admin listener (/healthz, /readyz, /metrics, /config) HOST:PORT', default: '127.0.0.1:9901' },
  'node-id': { description: "this node's id as the control plane shows it (default: the host name)" },
  'cache-file': { description: 'where the last applied snapshot is kept (default: ./lb-data-plane-<node-id>.json)' },
  zone: { description: 'zone or rack label sent to the control plane (default: empty)' },
  'drain-timeout-ms': { description: 'on SIGTERM/SIGINT, how long requests in flight may take to finish', default: '10000' },
  workers: {
    description:
      'processes serving client traffic (default: the CPU count); 1 runs everything in one process, N > 1 adds a primary that holds the control plane stream, the admin port and the cache file',
  },
  'max-concurrent-requests': {
    description: 'requests in flight per process past which new ones get 503 (X-LB-Overloaded: node); 0: no cap',
    default: String(PROXY_DEFAULTS.maxConcurrentRequests),
  },
  'max-event-loop-delay-ms': {
    description: "shed new requests with 503 while the event loop's p99 delay exceeds this; 0: off",
    default: String(PROXY_DEFAULTS.maxEventLoopDelayMs),
  },
  'max-header-size': { description: 'largest client request head in bytes; larger ones get 431', default: String(PROXY_DEFAULTS.maxHeaderSize) },
  'traffic-report-ms': {
    description: "how often a summary of this node's traffic (rates, errors, latency per route, pool and backend) goes to the control plane; 0: never",
    default: String(DEFAULT_TRAFFIC_REPORT_MS),
  },
  'metrics-backend-limit': {
    description: 'pools with more backends than this export pool-level metrics only, so a huge pool cannot swamp /metrics',
    default: String(DEFAULT_BACKEND_LIMIT),
  },
  'max-headers': { description: 'most header fields in a client request; more get 431', default: String(PROXY_DEFAULTS.maxHeaders) },
  'underscore-headers': {
    description: 'request header names containing "_": drop (as nginx does: a backend that reads "_" as "-" would see framing the proxy never saw) or allow',
    default: PROXY_DEFAULTS.underscoreHeaders,
  },
  'client-header-timeout-ms': {
    description: 'time a client has to send its request headers (slowloris defence)',
    default: String(PROXY_DEFAULTS.headersTimeoutMs),
  },
  'client-request-timeout-ms': {
    description: 'time a client has to send a whole request, body included; 0: none',
    default: String(PROXY_DEFAULTS.requestTimeoutMs),
  },
  'client-keep-alive-timeout-ms': {
    description: 'how long an idle client keep-alive connection stays open',
    default: String(PROXY_DEFAULTS.keepAliveTimeoutMs),
  },
  'client-http2-ping-interval-ms': {
    description: 'an HTTP/2 client connection silent this long gets a PING, and is closed if it does not answer within as long again; 0: never',
    default: String(PROXY_DEFAULTS.http2PingIntervalMs),
  },
  'upstream-http2-ping-interval-ms': {
    description:
      'an HTTP/2 connection to a backend silent this long gets a PING, and is closed (its streams failed) if it does not answer within as long again; 0: never',
    default: String(UPSTREAM_DEFAULTS.http2PingIntervalMs),
  },
  'worker-apply-timeout-ms': {
    description: 'with --workers > 1: a worker that takes longer than this to apply a push is killed and replaced',
    default: '10000',
  },
  'access-log': { description: 'one JSON line per request: off, stdout, or a file to append to (each worker appends its own lines)', default: 'off' },
  'http-server': {
    description: `server that parses client requests: native (built on node's own parser; the fast one) or node (node:http)`,
    default: DEFAULT_HTTP_SERVER,
  },
  'upstream-client': {
    description: `HTTP/1.1 client that talks to backends: native (built on node's own parser; the fast one) or undici`,
    default: DEFAULT_UPSTREAM_CLIENT,
  },
  'l4-io': {
    description: 'how tcp and tls-passthrough listeners move bytes: handles (libuv handles driven directly; the fast one) or sockets (net.Socket)',
    default: DEFAULT_TCP_IO,
  },
  'http-io': {
    description:
      'how plain HTTP/1.1 client connections (not TLS, not h2c) move bytes: handles (libuv handles driven directly; the fast one) or sockets (net.Socket)',
    default: DEFAULT_TCP_IO,
  },
  'upstream-io': {
    description:
      'how plain HTTP/1.1 connections to backends named by IP address move bytes: handles (libuv handles driven directly; the fast one) or sockets (net.Socket)',
    default: DEFAULT_TCP_IO,
  },
  'sticky-secret': {
    description: 'key that signs sticky-session cookies; give every data plane the same one (default: a built-in key, which does not stop forged cookies)',
  },
} satisfies Record<string, FlagSpec>;

const NODE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), FLAGS);
  if (flags.help) {
    process.stdout.write(`${usage(COMMAND, FLAGS)}\n`);
    return;
  }
  const controlPlanes = listFlag('control-plane', flags['control-plane']!);
  for (const cp of controlPlanes) hostPortFlag('control-plane', cp);
  const listen = hostPortFlag('listen', flags.listen!);
  const bindAddress = flags['bind-address'] ?? listen.host;
  if (isIP(bindAddress) === 0) throw new FlagError(`--bind-address "${bindAddress}" must be an IPv4 or IPv6 address`);
  const controlPlaneTls = controlPlaneTlsFlags(flags['tls-ca'], flags['tls-cert'], flags['tls-key']);
  const adminListen = hostPortFlag('admin-listen', flags['admin-listen']!);
  const nodeId = flags['node-id'] ?? hostname();
  if (!NODE_ID_RE.test(nodeId)) throw new FlagError(`--node-id "${nodeId}": use letters, digits, '.', '_' and '-' (up to 253)`);
  const proxy = proxyOptions(flags);
  const drainTimeoutMs = Number(flags['drain-timeout-ms']);
  if (!Number.isInteger(drainTimeoutMs) || drainTimeoutMs < 0) throw new FlagError('--drain-timeout-ms must be a whole number of milliseconds');

  const trafficReportMs = Number(flags['traffic-report-ms']);
  if (!Number.isInteger(trafficReportMs) || trafficReportMs < 0 || (trafficReportMs > 0 && trafficReportMs < 100))
    throw new FlagError('--traffic-report-ms must be 0 (off) or a whole number of milliseconds of at least 100');
  const workers = flags.workers === undefined ? availableParallelism() : Number(flags.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 256) throw new FlagError('--workers must be a whole number from 1 to 256');
  const stickySecret = flags['sticky-secret'];
  const workerApplyTimeoutMs = Number(flags['worker-apply-timeout-ms']);
  if (!Number.isInteger(workerApplyTimeoutMs) || workerApplyTimeoutMs < 100)
    throw new FlagError('--worker-apply-timeout-ms must be a whole number of at least 100');

  const upstream = {
    client: implementationFlag('upstream-client', flags['upstream-client']!, UPSTREAM_CLIENTS),
    http2PingIntervalMs: pingInterval('upstream-http2-ping-interval-ms', Number(flags['upstream-http2-ping-interval-ms'])),
    io: ioFlag('upstream-io', String(flags['upstream-io'])),
  };

  if (cluster.isWorker) {
    const logger = createLogger('data-plane').child({ worker: cluster.worker!.id });
    runWorker({ listen, bindAddress, drainTimeoutMs, stickySecret, logger, proxy, upstream });
    return;
  }
  const common = {
    controlPlanes,
    listen,
    bindAddress,
    controlPlaneTls,
    adminListen,
    nodeId,
    zone: flags.zone ?? '',
    cacheFile: flags['cache-file'] ?? `./lb-data-plane-${nodeId}.json`,
    drainTimeoutMs,
    stickySecret,
    trafficReportMs,
  };
  const node =
    workers === 1
      ? new DataPlaneNode({ ...common, proxy, upstream })
      : new ClusterPrimary({ ...common, workers, workerApplyTimeoutMs, logger: createLogger('data-plane') });
  // The defaults already chose node:http and undici when the parser failed its self-test; say so once.
  const native = nativeHttp1();
  if (!native.ok) node.logger.warn({ reason: native.reason }, "node's HTTP parser is not usable here: serving with node:http and undici");
  if (!rawTcp.ok)
    node.logger.warn({ reason: rawTcp.reason }, 'raw TCP handles are not usable here: L4, HTTP/1.1 client and backend connections use net.Socket');
  // Before start(): a signal while workers are still starting must drain them, not kill the primary.
  const stopping = stopOnSignals(node);
  try {
    await node.start();
  } catch (err) {
    if (stopping()) return; // stopped on a signal while starting; stop() exits the process
    node.logger.fatal({ err }, 'cannot start the data plane');
    process.exit(1);
  }
}

/** The client listener's limits (each process of a --workers node applies them to itself). */
function proxyOptions(flags: Readonly<Record<string, string | boolean | undefined>>): ProxyServerOptions {
  const whole = (name: string, min: number): number => {
    const value = Number(flags[name]);
    if (!Number.isInteger(value) || value < min) throw new FlagError(`--${name} must be a whole number${min > 0 ? ` of at least ${min}` : ' (0 or more)'}`);
    return value;
  };
  return {
    server: implementationFlag('http-server', String(flags['http-server']), HTTP_SERVERS),
    l4Io: ioFlag('l4-io', String(flags['l4-io'])),
    httpIo: ioFlag('http-io', String(flags['http-io'])),
    maxConcurrentRequests: whole('max-concurrent-requests', 0),
    maxEventLoopDelayMs: whole('max-event-loop-delay-ms', 0),
    maxHeaderSize: whole('max-header-size', 1024),
    maxHeaders: whole('max-headers', 1),
    metricsBackendLimit: whole('metrics-backend-limit', 0),
    underscoreHeaders: choiceFlag('underscore-headers', String(flags['underscore-headers']), UNDERSCORE_HEADERS),
    headersTimeoutMs: whole('client-header-timeout-ms', 100),
    requestTimeoutMs: whole('client-request-timeout-ms', 0),
    keepAliveTimeoutMs: whole('client-keep-alive-timeout-ms', 0),
    http2PingIntervalMs: pingInterval('client-http2-ping-interval-ms', whole('client-http2-ping-interval-ms', 0)),
    accessLog: accessLogFlag(String(flags['access-log'] ?? 'off')),
  };
}

/** --client- and --upstream-http2-ping-interval-ms: 0 (off) or at least a second, so that peers are not pinged on every tick. */
function pingInterval(name: string, ms: number): number {
  if (!Number.isInteger(ms) || ms < 0 || (ms > 0 && ms < 1000)) throw new FlagError(`--${name} must be 0 (never) or a whole number of at least 1000`);
  return ms;
}

/** --access-log: a file must be writable now, not found unwritable at the first request. */
function accessLogFlag(target: string): string {
  try {
    AccessLog.check(target);
  } catch (err) {
    throw new FlagError(`--access-log ${target}: cannot be written (${(err as Error).message})`);
  }
  return target;
}

/** --tls-ca, --tls-cert and --tls-key: all three (mutual TLS to the control plane) or none. */
function controlPlaneTlsFlags(
  ca: string | undefined,
  cert: string | undefined,
  key: string | undefined,
): { ca: Buffer; cert: Buffer; key: Buffer } | undefined {
  const given = [ca, cert, key].filter((v) => v !== undefined).length;
  if (given === 0) return undefined;
  if (given !== 3) throw new FlagError("--tls-ca, --tls-cert and --tls-key go together: mutual TLS needs the CA, this node's certificate and its key");
  const read = (flag: string, path: string): Buffer => {
    try {
      const data = readFileSync(path);
      if (!data.includes('-----BEGIN ')) throw new Error('not PEM');
      return data;
    } catch (err) {
      throw new FlagError(`--${flag} ${path}: ${(err as Error).message}`);
    }
  };
  return { ca: read('tls-ca', ca!), cert: read('tls-cert', cert!), key: read('tls-key', key!) };
}

/** --l4-io, --http-io and --upstream-io: `handles` only where they passed their self-test. */
function ioFlag(flag: string, value: string): TcpIo {
  const chosen = choiceFlag(flag, value, TCP_IOS);
  if (chosen === 'handles' && !rawTcp.ok) throw new FlagError(`--${flag} handles: raw TCP handles are not usable here (${rawTcp.reason}); use sockets`);
  return chosen;
}

/** --http-server and --upstream-client: one of `choices`, and `native` only where node's parser is reachable. */
function implementationFlag<T extends string>(flag: string, value: string, choices: readonly T[]): T {
  const chosen = choiceFlag(flag, value, choices);
  const native = nativeHttp1();
  if (chosen === 'native' && !native.ok)
    throw new FlagError(
      `--${flag} native: node's HTTP parser is not usable here (${native.reason}); use ${choices.filter((c) => c !== 'native').join(' or ')}`,
    );
  return chosen;
}

/** Installs the SIGTERM/SIGINT handlers; the returned function says whether one has fired. */
function stopOnSignals(node: { logger: Logger; stop(): Promise<void>; reopenLogs(): void }): () => boolean {
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      node.logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    node.logger.info({ signal }, 'shutting down: draining requests in flight');
    node.stop().then(
      () => {
        node.logger.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        node.logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // logrotate's postrotate: start a new access log file (SIGHUP would otherwise end the process).
  process.on('SIGHUP', () => node.reopenLogs());
  return () => signals > 0;
}

await runMain(COMMAND, FLAGS, main);
