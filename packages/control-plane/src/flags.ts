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
} satisfies Record<string, FlagSpec>;

export interface ControlPlaneSettings {
  help: boolean;
  etcdHosts: string[];
  http: HostPort;
  grpc: HostPort;
  etcdPrefix: string;
  replicaId: string;
  leaderTtlSeconds: number;
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

/** Throws FlagError on anything wrong, so runMain prints usage and exits 2. */
export function parseControlPlaneFlags(argv: string[], env: NodeJS.ProcessEnv = process.env): ControlPlaneSettings {
  const flags = parseFlags(argv, FLAGS, env);
  if (flags.help)
    return { help: true, etcdHosts: [], http: { host: '', port: 0 }, grpc: { host: '', port: 0 }, etcdPrefix: '', replicaId: '', leaderTtlSeconds: 0 };
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
  };
}
