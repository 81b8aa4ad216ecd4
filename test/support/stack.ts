/** A whole stack for one test file: real etcd, one control plane, N data planes, M backends. */
import { Backend } from './backends.js';
import { EtcdServer } from './etcd.js';
import { api } from './http.js';
import { ControlPlane, DataPlane } from './planes.js';
import { waitFor } from './wait.js';

export interface StackOptions {
  dataPlanes?: number;
  backends?: number;
  /** Flags added to the control plane's. */
  controlPlaneArgs?: string[];
  /** Flags added to data plane `i`'s (0-based; its node id is `dp-<i+1>`). */
  nodeArgs?: (i: number) => string[];
}

export class Stack {
  private constructor(
    readonly etcd: EtcdServer,
    readonly cp: ControlPlane,
    readonly dps: DataPlane[],
    readonly backends: Backend[],
  ) {}

  static async start(options: StackOptions = {}): Promise<Stack> {
    const etcd = await EtcdServer.start();
    const cp = await ControlPlane.start({ etcd: etcd.url, ...(options.controlPlaneArgs ? { extraArgs: options.controlPlaneArgs } : {}) });
    const backends = await Promise.all(Array.from({ length: options.backends ?? 3 }, (_, i) => Backend.start(`b${i + 1}`)));
    const dps: DataPlane[] = [];
    for (let i = 0; i < (options.dataPlanes ?? 2); i++) {
      dps.push(await DataPlane.start({ controlPlanes: [cp.grpcAddress], nodeId: `dp-${i + 1}`, extraArgs: options.nodeArgs?.(i) ?? [] }));
    }
    return new Stack(etcd, cp, dps, backends);
  }

  /** A write through the API that must succeed; waits until every running data plane runs the new version. */
  async write(method: string, path: string, body?: unknown): Promise<number> {
    const res = await api(method, `${this.cp.url}${path}`, body);
    if (res.status !== 200) throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(res.body)}`);
    await this.converge(res.body.version);
    return res.body.version as number;
  }

  /** PUT /v1/config and wait until every running data plane has applied the new version. */
  async applyConfig(config: unknown, headers: Record<string, string> = {}): Promise<number> {
    const res = await api('PUT', `${this.cp.url}/v1/config`, config, headers);
    if (res.status !== 200) throw new Error(`PUT /v1/config → ${res.status} ${JSON.stringify(res.body)}`);
    await this.converge(res.body.version);
    return res.body.version as number;
  }

  /** Waits until every running data plane reports `version` on its admin /config. */
  async converge(version: number, timeoutMs = 10_000): Promise<void> {
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
