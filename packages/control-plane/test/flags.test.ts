import { describe, expect, it } from 'vitest';
import { FlagError } from '@lb/shared';
import { parseControlPlaneFlags } from '../src/flags.js';

describe('lb-control-plane flags', () => {
  it('applies the defaults', () => {
    const s = parseControlPlaneFlags(['--etcd', 'http://127.0.0.1:2379'], {});
    expect(s).toMatchObject({
      etcdHosts: ['http://127.0.0.1:2379'],
      http: { host: '127.0.0.1', port: 8080 },
      grpc: { host: '127.0.0.1', port: 18000 },
      etcdPrefix: '/lb',
    });
    expect(s.replicaId).toMatch(new RegExp(`-${process.pid}$`));
  });

  it('reads a list of etcd endpoints, bare host:port included, and LB_* variables', () => {
    const s = parseControlPlaneFlags([], { LB_ETCD: 'http://a:2379, b:2379', LB_HTTP_LISTEN: '0.0.0.0:9000', LB_REPLICA_ID: 'cp-1' });
    expect(s.etcdHosts).toEqual(['http://a:2379', 'http://b:2379']);
    expect(s.http).toEqual({ host: '0.0.0.0', port: 9000 });
    expect(s.replicaId).toBe('cp-1');
  });

  it.each([
    [[], /--etcd is required/],
    [['--etcd', 'ftp://a:1'], /only http/],
    [['--etcd', 'http://a'], /needs a port/],
    [['--etcd', 'http://a:1', '--http-listen', 'nohost'], /--http-listen/],
    [['--etcd', 'http://a:1', '--grpc-listen', '1.2.3.4:99999'], /--grpc-listen/],
    [['--etcd', 'http://a:1', '--etcd-prefix', 'lb'], /--etcd-prefix/],
    [['--etcd', 'http://a:1', '--nope'], /nope/],
  ])('rejects %j', (argv, message) => {
    expect(() => parseControlPlaneFlags(argv as string[], {})).toThrow(FlagError);
    expect(() => parseControlPlaneFlags(argv as string[], {})).toThrow(message);
  });
});
