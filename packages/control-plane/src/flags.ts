/** The command line of lb-control-plane (every flag also reads LB_<NAME>, e.g. LB_ETCD). */
import { hostname } from 'node:os';
import { FlagError, hostPortFlag, listFlag, parseFlags, type FlagSpec, type HostPort } from '@lb/shared';

export const COMMAND = 'lb-control-plane';

export const FLAGS = {
  etcd: { description: 'etcd endpoints, comma-separated: http://HOST:PORT[,http://HOST:PORT]', required: true },
  'http-listen': { description: 'REST API address HOST:PORT', default: '127.0.0.1:8080' },
  'grpc-listen': { description: 'gRPC address data planes connect to, HOST:PORT', default: '127.0.0.1:18000' },
  'etcd-prefix': { description: 'prefix of every etcd key this control plane uses', default: '/lb' },
  'replica-id': { description: 'name of this replica, shown per node in GET /v1/nodes (default HOSTNAME-PID)' },
  'leader-ttl-seconds': { description: 'lease TTL of the health-check leader election: a dead leader is replaced after about this long (2..60)', default: '3' },
  'admin-token-file': {
    description:
      'file holding the bootstrap admin secret (actor "bootstrap-admin"); created with a new secret when missing. Without it, the first start on an empty etcd creates the token "admin" and prints it once',
  },
  'bootstrap-config': { description: 'YAML or JSON config committed as version 1 when etcd holds no config yet (ignored afterwards)' },
  'public-metrics': { description: 'serve /metrics without a token, for scrapers', boolean: true },
  'keep-versions': {
    description: 'config versions kept in history; older ones are pruned unless current or run by a known node (0 keeps all)',
    default: '1000',
  },
  'node-retention-seconds': { description: 'how long a disconnected data plane stays in GET /v1/nodes', default: '86400' },
  'keep-audit-entries': { description: 'audit entries kept; older ones are pruned', default: '10000' },
  'node-flush-ms': { description: 'how often the state of the data planes this replica holds (what they run, NACKs) is written to etcd', default: '2000' },
  'etcd-grace-seconds': { description: 'how long etcd may not answer before /readyz turns 503 (streams and pushes carry on meanwhile)', default: '10' },
  'max-config-bytes': {
    description: 'largest config a write may produce, in bytes of its JSON (larger: 413); request bodies may be twice this',
    default: String(32 * 1024 * 1024),
  },
} satisfies Record<string, FlagSpec>;

export interface ControlPlaneSettings {
  help: boolean;
  etcdHosts: string[];
  http: HostPort;
  grpc: HostPort;
  etcdPrefix: string;
  replicaId: string;
  leaderTtlSeconds: number;
  adminTokenFile?: string;
  bootstrapConfig?: string;
  publicMetrics: boolean;
  keepVersions: number;
  nodeRetentionSeconds: number;
  keepAuditEntries: number;
  maxConfigBytes: number;
  etcdGraceSeconds: number;
  nodeFlushMs: number;
}

function etcdHost(value: string): string {
  const url = /^[a-z]+:\/\//i.test(value) ? value : `http://${value}`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new FlagError(`--etcd "${value}" is not a URL such as http://127.0.0.1:2379`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new FlagError(`--etcd "${value}": only http:// and https:// are supported`);
  if (parsed.port === '') throw new FlagError(`--etcd "${value}" needs a port, e.g. http://127.0.0.1:2379`);
  return `${parsed.protocol}//${parsed.host}`;
}

function wholeNumber(flag: string, value: string | undefined, min: number, max: number): number {
  const n = Number(value);
  if (value === undefined || !/^\d+$/.test(value) || n < min || n > max) throw new FlagError(`--${flag} must be a whole number from ${min} to ${max}`);
  return n;
}

function booleanFlag(flag: string, value: string | undefined): boolean {
  if (value === undefined || value === 'false' || value === '0') return false;
  if (value === 'true' || value === '1') return true;
  throw new FlagError(`--${flag} takes no value (env: true, false, 1 or 0)`);
}

/** Throws FlagError on anything wrong, so runMain prints usage and exits 2. */
export function parseControlPlaneFlags(argv: string[], env: NodeJS.ProcessEnv = process.env): ControlPlaneSettings {
  const flags = parseFlags(argv, FLAGS, env);
  if (flags.help)
    return {
      help: true,
      etcdHosts: [],
      http: { host: '', port: 0 },
      grpc: { host: '', port: 0 },
      etcdPrefix: '',
      replicaId: '',
      leaderTtlSeconds: 0,
      publicMetrics: false,
      keepVersions: 0,
      nodeRetentionSeconds: 0,
      keepAuditEntries: 0,
      maxConfigBytes: 0,
      etcdGraceSeconds: 0,
      nodeFlushMs: 0,
    };
  const etcdPrefix = flags['etcd-prefix'] ?? '/lb';
  if (!/^\/[A-Za-z0-9._/-]*$/.test(etcdPrefix)) throw new FlagError(`--etcd-prefix "${etcdPrefix}" must start with "/" and use [A-Za-z0-9._/-]`);
  const replicaId = flags['replica-id'] ?? `${hostname()}-${process.pid}`;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(replicaId)) throw new FlagError(`--replica-id "${replicaId}" must be 1-128 of [A-Za-z0-9._-]`);
  const leaderTtlSeconds = Number(flags['leader-ttl-seconds'] ?? '3');
  if (!Number.isInteger(leaderTtlSeconds) || leaderTtlSeconds < 2 || leaderTtlSeconds > 60)
    throw new FlagError('--leader-ttl-seconds must be a whole number from 2 to 60');
  return {
    help: false,
    leaderTtlSeconds,
    etcdHosts: listFlag('etcd', flags.etcd ?? '').map(etcdHost),
    http: hostPortFlag('http-listen', flags['http-listen'] ?? ''),
    grpc: hostPortFlag('grpc-listen', flags['grpc-listen'] ?? ''),
    etcdPrefix,
    replicaId,
    ...(flags['admin-token-file'] !== undefined ? { adminTokenFile: flags['admin-token-file'] } : {}),
    ...(flags['bootstrap-config'] !== undefined ? { bootstrapConfig: flags['bootstrap-config'] } : {}),
    publicMetrics: booleanFlag('public-metrics', flags['public-metrics']),
    keepVersions: wholeNumber('keep-versions', flags['keep-versions'], 0, 1_000_000_000),
    nodeRetentionSeconds: wholeNumber('node-retention-seconds', flags['node-retention-seconds'], 1, 10 * 365 * 86400),
    keepAuditEntries: wholeNumber('keep-audit-entries', flags['keep-audit-entries'], 1, 10_000_000),
    maxConfigBytes: wholeNumber('max-config-bytes', flags['max-config-bytes'], 1024, 1024 * 1024 * 1024),
    etcdGraceSeconds: wholeNumber('etcd-grace-seconds', flags['etcd-grace-seconds'], 1, 3600),
    nodeFlushMs: wholeNumber('node-flush-ms', flags['node-flush-ms'], 100, 60_000),
  };
}
