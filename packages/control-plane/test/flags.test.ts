import { describe, expect, it } from 'vitest';
import { FlagError } from '@lb/shared';
import { testPki } from '../../../test/support/pki.js';
import { parseControlPlaneFlags } from '../src/flags.js';

describe('lb-control-plane flags', () => {
  it('applies the defaults', () => {
    const s = parseControlPlaneFlags(['--etcd', 'http://127.0.0.1:2379'], {});
    expect(s).toMatchObject({
      etcdHosts: ['http://127.0.0.1:2379'],
      http: { host: '127.0.0.1', port: 8080 },
      grpc: { host: '127.0.0.1', port: 18000 },
      etcdPrefix: '/lb',
      publicMetrics: false,
      keepVersions: 1000,
      nodeRetentionSeconds: 86400,
      keepAuditEntries: 10000,
    });
    expect(s.adminTokenFile).toBeUndefined();
    expect(s.bootstrapConfig).toBeUndefined();
    expect(s.replicaId).toMatch(new RegExp(`-${process.pid}$`));
  });

  it('reads a list of etcd endpoints, bare host:port included, and LB_* variables', () => {
    const s = parseControlPlaneFlags([], { LB_ETCD: 'http://a:2379, b:2379', LB_HTTP_LISTEN: '0.0.0.0:9000', LB_REPLICA_ID: 'cp-1' });
    expect(s.etcdHosts).toEqual(['http://a:2379', 'http://b:2379']);
    expect(s.http).toEqual({ host: '0.0.0.0', port: 9000 });
    expect(s.replicaId).toBe('cp-1');
  });

  it('reads the access, retention and bootstrap flags', () => {
    const s = parseControlPlaneFlags(
      [
        '--etcd',
        'http://a:1',
        '--admin-token-file',
        '/run/admin',
        '--bootstrap-config',
        'lb.yaml',
        '--public-metrics',
        '--keep-versions',
        '0',
        '--node-retention-seconds',
        '60',
      ],
      { LB_KEEP_AUDIT_ENTRIES: '500' },
    );
    expect(s).toMatchObject({
      adminTokenFile: '/run/admin',
      bootstrapConfig: 'lb.yaml',
      publicMetrics: true,
      keepVersions: 0,
      nodeRetentionSeconds: 60,
      keepAuditEntries: 500,
    });
    expect(parseControlPlaneFlags(['--etcd', 'http://a:1'], { LB_PUBLIC_METRICS: 'true' }).publicMetrics).toBe(true);
  });

  it.each([
    [[], /--etcd is required/],
    [['--etcd', 'ftp://a:1'], /only http/],
    [['--etcd', 'http://a'], /needs a port/],
    [['--etcd', 'http://a:1', '--http-listen', 'nohost'], /--http-listen/],
    [['--etcd', 'http://a:1', '--grpc-listen', '1.2.3.4:99999'], /--grpc-listen/],
    [['--etcd', 'http://a:1', '--etcd-prefix', 'lb'], /--etcd-prefix/],
    [['--etcd', 'http://a:1', '--nope'], /nope/],
    [['--etcd', 'http://a:1', '--keep-versions=-1'], /--keep-versions must be a whole number from 0/],
    [['--etcd', 'http://a:1', '--keep-versions', 'many'], /--keep-versions/],
    [['--etcd', 'http://a:1', '--node-retention-seconds', '0'], /--node-retention-seconds must be a whole number from 1/],
    [['--etcd', 'http://a:1', '--keep-audit-entries', '1.5'], /--keep-audit-entries/],
    [['--etcd', 'http://a:1', '--public-metrics=yes'], /public-metrics/],
  ])('rejects %j', (argv, message) => {
    expect(() => parseControlPlaneFlags(argv as string[], {})).toThrow(FlagError);
    expect(() => parseControlPlaneFlags(argv as string[], {})).toThrow(message);
  });

  it('reads the TLS flags: mTLS between the planes, HTTPS, etcd TLS, secrets and warnings, each group whole or not at all', () => {
    const site = testPki().issue({ cn: 'cp.example' });
    const s = parseControlPlaneFlags(
      [
        '--etcd',
        'https://a:2379',
        '--grpc-tls-cert',
        site.chainFile,
        '--grpc-tls-key',
        site.keyFile,
        '--grpc-client-ca',
        site.caFile,
        '--http-tls-cert',
        site.chainFile,
        '--http-tls-key',
        site.keyFile,
        '--etcd-ca',
        site.caFile,
        '--secrets-key-file',
        '/run/secrets-key',
        '--cert-warn-days',
        '30',
      ],
      {},
    );
    expect(s.tls.grpc?.clientCa.toString()).toBe(site.ca);
    expect(s.tls.http?.cert.toString()).toBe(site.chain);
    expect(s.tls.etcd).toEqual({ ca: Buffer.from(site.ca) });
    expect(s).toMatchObject({ secretsKeyFile: '/run/secrets-key', certWarnDays: 30, ticketRotationHours: 12 });
    expect(s.tls.devPlaintextSecrets).toBe(false);
    const bad: Array<[string[], RegExp]> = [
      [['--grpc-tls-cert', site.chainFile, '--grpc-tls-key', site.keyFile], /missing --grpc-client-ca/],
      [['--http-tls-cert', site.chainFile], /missing --http-tls-key/],
      [['--etcd-ca', site.caFile], /need https:\/\/ etcd URLs/],
      [['--http-tls-cert', '/nope', '--http-tls-key', site.keyFile], /--http-tls-cert \/nope: cannot read it/],
      [['--cert-warn-days', 'soon'], /--cert-warn-days must be a whole number/],
    ];
    for (const [args, message] of bad) {
      expect(() => parseControlPlaneFlags(['--etcd', 'http://a:1', ...args], {})).toThrow(FlagError);
      expect(() => parseControlPlaneFlags(['--etcd', 'http://a:1', ...args], {})).toThrow(message);
    }
  });
});
