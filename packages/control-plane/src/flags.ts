/** The command line of lb-control-plane (every flag also reads LB_<NAME>, e.g. LB_ETCD). */
import { readFileSync } from 'node:fs';
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
  'secrets-key-file': {
    description:
      'file holding 32 random bytes (64 hex digits; openssl rand -hex 32) that encrypt private keys in etcd (AES-256-GCM); every replica needs the same one. Without it no private key can be stored or pushed',
  },
  'cert-warn-days': { description: 'GET /v1/certificates warns of certificates expiring within this many days', default: '21' },
  'session-ticket-rotation-hours': {
    description:
      'how often the TLS session-ticket key every data plane shares is replaced (resumption survives one rotation on most clients: they fall back to a full handshake)',
    default: '12',
  },
  'grpc-tls-cert': { description: 'PEM certificate chain of the gRPC server; with --grpc-tls-key and --grpc-client-ca data planes must use mutual TLS' },
  'grpc-tls-key': { description: 'PEM private key of --grpc-tls-cert' },
  'grpc-client-ca': {
    description: "PEM CA certificate(s) that data planes' client certificates must chain to; a node's id must be its certificate's CN or a DNS name in it",
  },
  'dev-plaintext-secrets': {
    description: 'development only: push private keys and session-ticket keys over plaintext gRPC, to data planes on loopback addresses only',
    boolean: true,
  },
  'http-tls-cert': { description: 'PEM certificate chain: serve the REST API over HTTPS (with --http-tls-key)' },
  'http-tls-key': { description: 'PEM private key of --http-tls-cert' },
  'etcd-ca': { description: "PEM CA certificate(s) that etcd's server certificate must chain to (https:// etcd URLs; default: the system's CAs)" },
  'etcd-cert': { description: 'PEM client certificate presented to etcd (with --etcd-key), for etcd --client-cert-auth' },
  'etcd-key': { description: 'PEM private key of --etcd-cert' },
  'node-flush-ms': { description: 'how often the state of the data planes this replica holds (what they run, NACKs) is written to etcd', default: '2000' },
  'etcd-grace-seconds': { description: 'how long etcd may not answer before /readyz turns 503 (streams and pushes carry on meanwhile)', default: '10' },
  'max-config-bytes': {
    description: 'largest config a write may produce, in bytes of its JSON (larger: 413); request bodies may be twice this',
    default: String(32 * 1024 * 1024),
  },
} satisfies Record<string, FlagSpec>;

/** PEM material read from files named by flags, at start (a bad path is a usage error, not a late failure). */
export interface CertKeyPair {
  cert: Buffer;
  key: Buffer;
}

export interface PlaneTlsSettings {
  /** gRPC server over mutual TLS: its certificate and the CA its clients' certificates chain to. */
  grpc?: CertKeyPair & { clientCa: Buffer };
  /** REST API over HTTPS. */
  http?: CertKeyPair;
  /** TLS to etcd: the CA to trust, and a client certificate. */
  etcd?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  /** Push keys over plaintext gRPC to loopback peers (development). */
  devPlaintextSecrets: boolean;
}

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
  secretsKeyFile?: string;
  certWarnDays: number;
  ticketRotationHours: number;
  tls: PlaneTlsSettings;
}

type FlagMap = Readonly<Record<string, string | undefined>>;

function pemFile(flag: string, path: string | undefined): Buffer | undefined {
  if (path === undefined) return undefined;
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (err) {
    throw new FlagError(`--${flag} ${path}: cannot read it: ${(err as Error).message}`);
  }
  if (!data.includes('-----BEGIN ')) throw new FlagError(`--${flag} ${path} is not PEM`);
  return data;
}

/** Flags that only mean something together: all of them or none. */
function together(flags: FlagMap, names: string[], why: string): boolean {
  const given = names.filter((n) => flags[n] !== undefined);
  if (given.length > 0 && given.length < names.length)
    throw new FlagError(`--${names.join(', --')} go together (${why}); missing --${names.filter((n) => !given.includes(n)).join(', --')}`);
  return given.length === names.length;
}

function planeTls(flags: FlagMap, etcdHosts: string[]): PlaneTlsSettings {
  const grpc = together(flags, ['grpc-tls-cert', 'grpc-tls-key', 'grpc-client-ca'], 'private keys go only to data planes that prove who they are');
  const http = together(flags, ['http-tls-cert', 'http-tls-key'], 'the REST API serves HTTPS with both');
  together(flags, ['etcd-cert', 'etcd-key'], 'a client certificate needs its key');
  const etcdTls = flags['etcd-ca'] !== undefined || flags['etcd-cert'] !== undefined;
  if (etcdTls && etcdHosts.some((h) => h.startsWith('http://'))) throw new FlagError('--etcd-ca/--etcd-cert need https:// etcd URLs');
  return {
    ...(grpc
      ? {
          grpc: {
            cert: pemFile('grpc-tls-cert', flags['grpc-tls-cert'])!,
            key: pemFile('grpc-tls-key', flags['grpc-tls-key'])!,
            clientCa: pemFile('grpc-client-ca', flags['grpc-client-ca'])!,
          },
        }
      : {}),
    ...(http ? { http: { cert: pemFile('http-tls-cert', flags['http-tls-cert'])!, key: pemFile('http-tls-key', flags['http-tls-key'])! } } : {}),
    ...(etcdTls
      ? {
          etcd: {
            ...(flags['etcd-ca'] !== undefined ? { ca: pemFile('etcd-ca', flags['etcd-ca'])! } : {}),
            ...(flags['etcd-cert'] !== undefined ? { cert: pemFile('etcd-cert', flags['etcd-cert'])!, key: pemFile('etcd-key', flags['etcd-key'])! } : {}),
          },
        }
      : {}),
    devPlaintextSecrets: booleanFlag('dev-plaintext-secrets', flags['dev-plaintext-secrets']),
  };
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
      certWarnDays: 0,
      ticketRotationHours: 0,
      tls: { devPlaintextSecrets: false },
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
  const etcdHosts = listFlag('etcd', flags.etcd ?? '').map(etcdHost);
  return {
    help: false,
    leaderTtlSeconds,
    etcdHosts,
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
    ...(flags['secrets-key-file'] !== undefined ? { secretsKeyFile: flags['secrets-key-file'] } : {}),
    certWarnDays: wholeNumber('cert-warn-days', flags['cert-warn-days'], 0, 3650),
    ticketRotationHours: wholeNumber('session-ticket-rotation-hours', flags['session-ticket-rotation-hours'], 1, 24 * 30),
    tls: planeTls(flags as unknown as FlagMap, etcdHosts),
    maxConfigBytes: wholeNumber('max-config-bytes', flags['max-config-bytes'], 1024, 1024 * 1024 * 1024),
    etcdGraceSeconds: wholeNumber('etcd-grace-seconds', flags['etcd-grace-seconds'], 1, 3600),
    nodeFlushMs: wholeNumber('node-flush-ms', flags['node-flush-ms'], 100, 60_000),
  };
}
