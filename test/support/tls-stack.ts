/**
 * A stack whose planes speak mutual TLS, as issue 11 runs them: real etcd, a control plane with
 * --grpc-tls-cert/--grpc-tls-key/--grpc-client-ca and a --secrets-key-file, data planes with
 * --tls-ca/--tls-cert/--tls-key (each certificate naming its node id), real backends. Everything
 * is made in temporary files by test/support/pki.ts.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Backend } from './backends.js';
import { EtcdServer } from './etcd.js';
import { api } from './http.js';
import { testPki, type Issued } from './pki.js';
import { ControlPlane, DataPlane } from './planes.js';
import { waitFor } from './wait.js';

/** A 32-byte secrets key in a 0600 file, as --secrets-key-file wants it. */
export function secretsKeyFile(): string {
  const path = join(mkdtempSync(join(tmpdir(), 'lb-secrets-')), 'secrets.key');
  writeFileSync(path, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  return path;
}

/** The control plane's gRPC server certificate: valid for 127.0.0.1 and localhost. */
export function controlPlaneCertificate(): Issued {
  return testPki().issue({ cn: 'lb-control-plane', sans: ['DNS:localhost', 'IP:127.0.0.1'], usage: 'server' });
}

/** A data plane's client certificate, naming `nodeId`. */
export function nodeCertificate(nodeId: string, options: { otherCa?: boolean } = {}): Issued {
  return testPki().issue({ cn: nodeId, sans: [`DNS:${nodeId}`], usage: 'client', ...options });
}

/** --tls-ca/--tls-cert/--tls-key for a data plane with `certificate`. */
export function nodeTlsArgs(certificate: Issued): string[] {
  return ['--tls-ca', testPki().rootFile, '--tls-cert', certificate.chainFile, '--tls-key', certificate.keyFile];
}

/** The control plane's mutual-TLS and secrets flags. */
export function controlPlaneTlsArgs(keyFile: string = secretsKeyFile()): string[] {
  const cp = controlPlaneCertificate();
  return ['--secrets-key-file', keyFile, '--grpc-tls-cert', cp.chainFile, '--grpc-tls-key', cp.keyFile, '--grpc-client-ca', testPki().rootFile];
}

export interface TlsStackOptions {
  dataPlanes?: number;
  backends?: number;
  /** Flags added to the control plane's. */
  controlPlaneArgs?: string[];
  /** Flags added to data plane `i`'s (0-based). */
  nodeArgs?: (i: number) => string[];
}

/**
 * Where data plane `i` (0-based) binds the config's listeners: nodes share one host here, so each
 * gets its own loopback address (127.0.0.1, 127.0.0.2, …) and every node can open the same port.
 */
export function bindAddressOf(i: number): string {
  return `127.0.0.${i + 1}`;
}

export class TlsStack {
  private constructor(
    readonly etcd: EtcdServer,
    readonly cp: ControlPlane,
    readonly dps: DataPlane[],
    readonly backends: Backend[],
  ) {}

  static async start(options: TlsStackOptions = {}): Promise<TlsStack> {
    const etcd = await EtcdServer.start();
    const cp = await ControlPlane.start({ etcd: etcd.url, extraArgs: [...controlPlaneTlsArgs(), ...(options.controlPlaneArgs ?? [])] });
    const backends = await Promise.all(Array.from({ length: options.backends ?? 2 }, (_, i) => Backend.start(`b${i + 1}`)));
    const dps: DataPlane[] = [];
    for (let i = 0; i < (options.dataPlanes ?? 2); i++) {
      const nodeId = `dp-${i + 1}`;
      const extraArgs = [...nodeTlsArgs(nodeCertificate(nodeId)), '--bind-address', bindAddressOf(i), ...(options.nodeArgs?.(i) ?? [])];
      dps.push(await DataPlane.start({ controlPlanes: [cp.grpcAddress], nodeId, extraArgs }));
    }
    return new TlsStack(etcd, cp, dps, backends);
  }

  /** A write through the API that must succeed; waits until every running node runs the new version. */
  async write(method: string, path: string, body?: unknown): Promise<number> {
    const res = await api(method, `${this.cp.url}${path}`, body);
    if (res.status !== 200) throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(res.body)}`);
    await this.converge(res.body.version);
    return res.body.version as number;
  }

  async converge(version: number, timeoutMs = 15_000): Promise<void> {
    for (const dp of this.dps.filter((d) => d.process.running)) {
      await waitFor(async () => (await dp.appliedVersion()) === version, { timeoutMs, message: `${dp.options.nodeId} to apply version ${version}` });
    }
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.dps.map((d) => d.stop()));
    await this.cp.stop().catch(() => undefined);
    await Promise.allSettled(this.backends.map((b) => b.close()));
    await this.etcd.stop();
  }
}
