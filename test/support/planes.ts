/** The real control plane and data plane, started as processes from their built entry points. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { withJemalloc } from '../../packages/data-plane/src/runtime/allocator.js';
import { adminTokenFile } from './auth.js';
import { Child } from './child.js';
import { freePort, waitFor } from './wait.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CP_MAIN = join(ROOT, 'packages/control-plane/dist/main.js');
const DP_MAIN = join(ROOT, 'packages/data-plane/dist/main.js');

export interface ControlPlaneOptions {
  etcd: string;
  httpPort?: number;
  grpcPort?: number;
  prefix?: string;
  /**
   * Flags added to the command line. Unless they name --admin-token-file (or adminTokenFile is
   * false), the control plane gets one holding TEST_ADMIN_TOKEN (auth.ts), the token api() sends
   * by default.
   */
  extraArgs?: string[];
  /** false: no --admin-token-file at all (the first start on an empty etcd then prints a new admin token). */
  adminTokenFile?: false;
  /** Environment added to the process's (default LB_LOG_LEVEL=warn). */
  env?: Record<string, string>;
  /** The REST API serves HTTPS (extraArgs name --http-tls-cert/--http-tls-key): readiness is checked trusting this CA. */
  httpsCa?: string;
  /** Wait for /readyz (etcd reachable) before returning; default true. false: /healthz (the process is up). */
  waitReady?: boolean;
}

export class ControlPlane {
  private readonly tokenFile: string | undefined;
  private child!: Child;

  private constructor(
    readonly options: ControlPlaneOptions,
    readonly httpPort: number,
    readonly grpcPort: number,
  ) {
    this.tokenFile = options.adminTokenFile === false || options.extraArgs?.includes('--admin-token-file') ? undefined : adminTokenFile();
  }

  get url(): string {
    return `${this.options.httpsCa === undefined ? 'http' : 'https'}://127.0.0.1:${this.httpPort}`;
  }

  get grpcAddress(): string {
    return `127.0.0.1:${this.grpcPort}`;
  }

  static async start(options: ControlPlaneOptions): Promise<ControlPlane> {
    const cp = new ControlPlane(options, options.httpPort ?? (await freePort()), options.grpcPort ?? (await freePort()));
    await cp.restart();
    return cp;
  }

  /** Starts the process again on the same ports (after stop() or kill()) and waits until ready. */
  async restart(): Promise<void> {
    const args = [CP_MAIN, '--etcd', this.options.etcd, '--http-listen', `127.0.0.1:${this.httpPort}`, '--grpc-listen', this.grpcAddress];
    if (this.options.prefix) args.push('--etcd-prefix', this.options.prefix);
    if (this.tokenFile) args.push('--admin-token-file', this.tokenFile);
    args.push(...(this.options.extraArgs ?? []));
    this.child = new Child('control-plane', process.execPath, args, { LB_LOG_LEVEL: 'warn', ...this.options.env });
    const child = this.child;
    const ca = this.options.httpsCa;
    const path = this.options.waitReady === false ? '/healthz' : '/readyz';
    const dispatcher = ca === undefined ? undefined : new Agent({ connect: { ca } });
    await waitFor(
      async () => {
        if (!child.running) throw new Error(`control plane exited: ${child.logs()}`);
        const res = await request(`${this.url}${path}`, dispatcher === undefined ? {} : { dispatcher });
        await res.body.dump();
        return res.statusCode === 200;
      },
      { timeoutMs: 20_000, message: `control plane ${path}` },
    );
    await dispatcher?.close();
  }

  get process(): Child {
    return this.child;
  }

  stop(): Promise<number | null> {
    return this.child.stop();
  }

  kill(): Promise<number | null> {
    return this.child.kill();
  }
}

export interface DataPlaneOptions {
  controlPlanes: string[];
  nodeId: string;
  cacheFile?: string;
  listenPort?: number;
  adminPort?: number;
  /**
   * Worker processes (`--workers`). Default 1, so request order and per-backend counts are exact;
   * tests of multi-process behaviour ask for more. Ignored when extraArgs names --workers.
   */
  workers?: number;
  extraArgs?: string[];
  /** Wait for /readyz (a snapshot applied) before returning; default true. */
  waitReady?: boolean;
  /** LB_LOG_LEVEL; default warn. */
  logLevel?: string;
}

export class DataPlane {
  private child!: Child;
  readonly cacheFile: string;

  private constructor(
    readonly options: DataPlaneOptions,
    readonly port: number,
    readonly adminPort: number,
  ) {
    this.cacheFile = options.cacheFile ?? join(mkdtempSync(join(tmpdir(), 'lb-dp-')), 'snapshot.json');
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get adminUrl(): string {
    return `http://127.0.0.1:${this.adminPort}`;
  }

  static async start(options: DataPlaneOptions): Promise<DataPlane> {
    const dp = new DataPlane(options, options.listenPort ?? (await freePort()), options.adminPort ?? (await freePort()));
    await dp.restart();
    return dp;
  }

  async restart(): Promise<void> {
    const args = [
      DP_MAIN,
      '--control-plane',
      this.options.controlPlanes.join(','),
      '--listen',
      `127.0.0.1:${this.port}`,
      '--admin-listen',
      `127.0.0.1:${this.adminPort}`,
      '--node-id',
      this.options.nodeId,
      '--cache-file',
      this.cacheFile,
      ...(this.options.extraArgs ?? []),
    ];
    if (!args.includes('--workers')) args.push('--workers', String(this.options.workers ?? 1));
    // On the allocator the shipped launchers give it (runtime/allocator.ts).
    this.child = new Child(`data-plane ${this.options.nodeId}`, process.execPath, args, { ...withJemalloc({}), LB_LOG_LEVEL: this.options.logLevel ?? 'warn' });
    const child = this.child;
    const path = this.options.waitReady === false ? '/healthz' : '/readyz';
    await waitFor(
      async () => {
        if (!child.running) throw new Error(`data plane exited: ${child.logs()}`);
        return (await fetch(`${this.adminUrl}${path}`)).ok;
      },
      { timeoutMs: 20_000, message: `data plane ${this.options.nodeId} ${path}` },
    );
  }

  get process(): Child {
    return this.child;
  }

  /** The version the node has applied, from its admin /config. */
  async appliedVersion(): Promise<number> {
    const res = await fetch(`${this.adminUrl}/config`);
    return ((await res.json()) as { version: number }).version;
  }

  stop(): Promise<number | null> {
    return this.child.stop();
  }

  kill(): Promise<number | null> {
    return this.child.kill();
  }
}
