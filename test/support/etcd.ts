/** A real etcd server (Debian's etcd-server) on loopback with a temporary data directory. */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { Etcd3 } from 'etcd3';
import { createLogger, type Config } from '@lb/shared';
import { encodeConfig } from '../../packages/control-plane/src/store/encoded-config.js';
import { EtcdConfigStore } from '../../packages/control-plane/src/store/etcd-config-store.js';
import { Child } from './child.js';
import { freePort, waitFor } from './wait.js';

/** Serve clients over TLS with this certificate, and require client certificates of `clientCa`. */
export interface EtcdTls {
  certFile: string;
  keyFile: string;
  clientCaFile: string;
}

export class EtcdServer {
  private child: Child | undefined;
  readonly dataDir = mkdtempSync(join(tmpdir(), 'lb-etcd-'));

  private constructor(
    readonly clientPort: number,
    readonly peerPort: number,
    readonly tls: EtcdTls | undefined,
  ) {}

  get url(): string {
    return `${this.tls === undefined ? 'http' : 'https'}://127.0.0.1:${this.clientPort}`;
  }

  static async start(options: { tls?: EtcdTls } = {}): Promise<EtcdServer> {
    const server = new EtcdServer(await freePort(), await freePort(), options.tls);
    await server.restart();
    return server;
  }

  /** (Re)starts etcd on the same ports and data directory, so its contents survive. */
  async restart(): Promise<void> {
    const peer = `http://127.0.0.1:${this.peerPort}`;
    this.child = new Child('etcd', 'etcd', [
      '--name',
      'test',
      '--data-dir',
      this.dataDir,
      '--listen-client-urls',
      this.url,
      '--advertise-client-urls',
      this.url,
      '--listen-peer-urls',
      peer,
      '--initial-advertise-peer-urls',
      peer,
      '--initial-cluster',
      `test=${peer}`,
      '--log-level',
      'warn',
      ...(this.tls === undefined
        ? []
        : ['--cert-file', this.tls.certFile, '--key-file', this.tls.keyFile, '--trusted-ca-file', this.tls.clientCaFile, '--client-cert-auth']),
    ]);
    const child = this.child;
    // Over TLS /health wants a client certificate too: a connection that etcd accepts will do.
    const probe = this.tls === undefined ? () => this.healthy() : () => this.listening();
    await waitFor(
      async () => {
        if (!child.running) throw new Error(`etcd exited: ${child.logs()}`);
        return probe();
      },
      { timeoutMs: 20_000, message: 'etcd to be healthy' },
    );
  }

  private async healthy(): Promise<boolean> {
    const res = await fetch(`${this.url}/health`);
    return res.ok && ((await res.json()) as { health: string }).health === 'true';
  }

  private listening(): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = connect({ host: '127.0.0.1', port: this.clientPort }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
  }

  /**
   * Commits version `parent + 1` holding `config` straight into etcd (the default /lb layout,
   * written by the control plane's own store code), past the control plane's validation, as a
   * buggy or newer control plane might. True when `parent` was still the current version.
   */
  async commitUnchecked(parent: number, config: unknown): Promise<boolean> {
    const etcd = new Etcd3({ hosts: this.url });
    try {
      const store = new EtcdConfigStore({ client: etcd, prefix: '/lb', logger: createLogger('test', 'silent') });
      const base = await store.current();
      if (base.version !== parent) return false;
      const record = { version: parent + 1, parent, createdAt: new Date().toISOString(), author: 'test', message: 'bad', config: config as Config };
      return await store.commit(record, encodeConfig(config as Config), base);
    } finally {
      etcd.close();
    }
  }

  /**
   * A backup of etcd's data as it is now: etcd stops, its data directory is copied, etcd starts
   * again (a cold copy is a consistent one). Hand it to restoreBackup() later.
   */
  async backup(): Promise<string> {
    await this.child?.stop();
    const copy = mkdtempSync(join(tmpdir(), 'lb-etcd-backup-'));
    cpSync(this.dataDir, copy, { recursive: true });
    await this.restart();
    return copy;
  }

  /** Puts etcd's data back to a backup(), as an operator recovering from one would, and starts it again. */
  async restoreBackup(backup: string): Promise<void> {
    await this.child?.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
    cpSync(backup, this.dataDir, { recursive: true });
    rmSync(backup, { recursive: true, force: true });
    await this.restart();
  }

  async kill(): Promise<void> {
    await this.child?.kill();
  }

  async stop(): Promise<void> {
    await this.child?.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
