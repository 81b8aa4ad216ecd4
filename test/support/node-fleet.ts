/**
 * Many simulated data planes (simulated-node.ts) in separate processes, as tests and benchmarks
 * see them: per node, what it last ACKed, when and how many bytes that push was, and how many of
 * its streams ended. Processes are started with tsx, so nothing needs building but the packages.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { setPriority } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { NodeEvent } from './simulated-node.js';
import { waitFor } from './wait.js';

const PROCESS = fileURLToPath(new URL('./node-fleet-process.ts', import.meta.url));

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export interface FleetOptions {
  /** Control-plane gRPC addresses. */
  controlPlanes: string[];
  nodes: number;
  /** Processes the nodes are spread over. Default 1. */
  processes?: number;
  /** Node ids are `<prefix>-<p>-<i>`. Default "sim". */
  prefix?: string;
  /**
   * Scheduling niceness of the fleet's processes (0-19). Default 0. Real nodes run on other
   * machines: a positive value keeps the fleet's CPU (reconnect attempts above all) from starving
   * the control plane and etcd on a small benchmark machine.
   */
  nice?: number;
}

export interface NodeProgress {
  version: number;
  /** When it sent its ACK (ms since the epoch, sub-ms precision). */
  ackedAt: number;
  /** Size of the push it ACKed. */
  bytes: number;
  delta: boolean;
  /** For a delta: the resource keys it upserted, and those it removed with a leading "-". */
  changed: string[];
  connectedAt: number;
  /** Streams that ended after working. */
  closed: number;
  nacks: number;
}

export class NodeFleet {
  readonly nodes = new Map<string, NodeProgress>();
  private readonly children: ChildProcess[] = [];
  private readonly listeners = new Set<(event: NodeEvent) => void>();

  private constructor(readonly options: FleetOptions) {}

  static start(options: FleetOptions): NodeFleet {
    const fleet = new NodeFleet(options);
    const processes = options.processes ?? 1;
    for (let p = 0; p < processes; p++) {
      const count = Math.floor(options.nodes / processes) + (p < options.nodes % processes ? 1 : 0);
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          PROCESS,
          '--control-plane',
          options.controlPlanes.join(','),
          '--nodes',
          String(count),
          '--prefix',
          `${options.prefix ?? 'sim'}-${p}`,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      createInterface({ input: child.stdout! }).on('line', (line) => fleet.onEvent(JSON.parse(line) as NodeEvent));
      if (options.nice !== undefined && options.nice !== 0 && child.pid !== undefined) setPriority(child.pid, options.nice);
      live.add(child);
      child.once('exit', () => live.delete(child));
      fleet.children.push(child);
    }
    return fleet;
  }

  private onEvent(event: NodeEvent): void {
    let node = this.nodes.get(event.node);
    if (node === undefined) {
      node = { version: -1, ackedAt: 0, bytes: 0, delta: false, changed: [], connectedAt: 0, closed: 0, nacks: 0 };
      this.nodes.set(event.node, node);
    }
    if (event.t === 'connected') node.connectedAt = event.at;
    else if (event.t === 'closed') node.closed++;
    else if (event.t === 'nack') node.nacks++;
    else {
      node.version = event.version;
      node.ackedAt = event.at;
      node.bytes = event.bytes;
      node.delta = event.delta;
      node.changed = event.changed;
    }
    for (const listener of this.listeners) listener(event);
  }

  /** Calls `listener` for every event from now on; returns a function that stops it. */
  listen(listener: (event: NodeEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Every node has ACKed `version` (or later); resolves with their progress. */
  async converged(version: number, timeoutMs = 30_000): Promise<NodeProgress[]> {
    return waitFor(
      () => {
        if (this.nodes.size < this.options.nodes) return false;
        const all = [...this.nodes.values()];
        return all.every((n) => n.version >= version) ? all : false;
      },
      { timeoutMs, intervalMs: 5, message: `${this.options.nodes} simulated nodes to ACK version ${version}` },
    );
  }

  /** Streams that ended after working, over all nodes. */
  closedStreams(): number {
    let closed = 0;
    for (const n of this.nodes.values()) closed += n.closed;
    return closed;
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
      ),
    );
  }
}
