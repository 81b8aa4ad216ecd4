import * as grpc from '@grpc/grpc-js';
import { KEEPALIVE, loadDiscovery, type ControlMessage, type NodeMessage } from '@lb/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { DiscoveryClient } from '../src/push/discovery-client.js';
import { deadAddress, silentLogger, simpleConfig, snapshot, testApplier, waitFor } from './helpers.js';

type ServerCall = grpc.ServerDuplexStream<NodeMessage, ControlMessage>;

/** A real gRPC server speaking the discovery proto: records what nodes send, pushes on demand. */
class FakeControlPlane {
  readonly received: NodeMessage[] = [];
  readonly calls: ServerCall[] = [];
  onHello: (call: ServerCall, msg: NodeMessage) => void = () => {};
  private server!: grpc.Server;
  port = 0;

  async start(port = 0): Promise<this> {
    this.server = new grpc.Server({
      'grpc.keepalive_time_ms': KEEPALIVE.timeMs,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.http2.min_ping_interval_without_data_ms': 1_000,
    });
    this.server.addService(loadDiscovery().service, {
      Stream: (call: ServerCall) => {
        this.calls.push(call);
        call.on('data', (msg: NodeMessage) => {
          this.received.push(msg);
          if (msg.hello) this.onHello(call, msg);
        });
        call.on('error', () => {});
        call.on('end', () => call.end());
      },
    });
    this.port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    return this;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  of(kind: 'hello' | 'ack' | 'nack'): NodeMessage[] {
    return this.received.filter((m) => m[kind]);
  }

  kill(): void {
    for (const c of this.calls) c.destroy();
    this.server.forceShutdown();
  }
}

describe('DiscoveryClient', () => {
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  function node(addresses: string[]) {
    const { applier, upstreams } = testApplier();
    const connections: boolean[] = [];
    const client = new DiscoveryClient({
      addresses,
      nodeId: 'dp-1',
      zone: 'z1',
      listenAddress: '127.0.0.1:8000',
      handler: applier,
      logger: silentLogger,
      random: () => 0.5,
      initialBackoffMs: 50,
      maxBackoffMs: 200,
      firstMessageTimeoutMs: 1_000,
      onConnectionChange: (c) => connections.push(c),
    });
    cleanup.push(
      () => client.stop(),
      () => upstreams.closeAll(),
    );
    return { applier, client, connections };
  }

  it('says Hello, ACKs a good snapshot, NACKs a bad one and keeps the old table, ACKs health', async () => {
    const cp = await new FakeControlPlane().start();
    cleanup.push(() => cp.kill());
    cp.onHello = (call) => call.write({ config: snapshot(1, simpleConfig(['10.0.0.1:80'])) });
    const { applier, client, connections } = node([cp.address]);
    client.start();
    await waitFor(() => cp.of('ack').length === 1, 5_000, 'first ack');
    expect(cp.of('hello')[0]!.hello).toMatchObject({ nodeId: 'dp-1', zone: 'z1', cachedVersion: 0, address: '127.0.0.1:8000' });
    expect(cp.of('ack')[0]!.ack).toMatchObject({ version: 1, kind: 'PUSH_KIND_CONFIG' });
    expect(client.connectedTo).toBe(cp.address);
    expect(connections).toEqual([true]);

    const call = cp.calls[0]!;
    const bad = snapshot(2, { pools: { web: { algorithm: 'nope' } } });
    call.write({ config: bad });
    await waitFor(() => cp.of('nack').length === 1, 5_000, 'nack');
    expect(cp.of('nack')[0]!.nack).toMatchObject({ nonce: bad.nonce, version: 2, kind: 'PUSH_KIND_CONFIG' });
    expect(cp.of('nack')[0]!.nack!.error).toMatch(/^DP_ERR_SNAPSHOT_INVALID: .*pools\.web\.algorithm/);
    expect(applier.appliedVersion()).toBe(1);

    call.write({ health: { revision: 9, nonce: 'h1', full: true, backends: [{ pool: 'web', backendId: 'b0', status: 'unhealthy', sinceUnixMs: 5 }] } });
    await waitFor(() => cp.of('ack').length === 2, 5_000, 'health ack');
    expect(cp.of('ack')[1]!.ack).toMatchObject({ nonce: 'h1', version: 9, kind: 'PUSH_KIND_HEALTH' });
    expect(applier.describe().health).toEqual({ revision: 9, backends: { web: { b0: { status: 'unhealthy', sinceUnixMs: 5 } } } });
  });

  it('health alone does not make a node ready; the empty config (version 0) does', async () => {
    const cp = await new FakeControlPlane().start();
    cleanup.push(() => cp.kill());
    cp.onHello = (call) => call.write({ health: { revision: 1, nonce: 'h', full: true, backends: [] } });
    const { applier, client } = node([cp.address]);
    client.start();
    await waitFor(() => cp.of('ack').length === 1, 5_000, 'health ack');
    expect(applier.current).toBeUndefined();
    // A control plane with nothing written yet pushes version 0 to a node that has no config.
    cp.calls[0]!.write({ config: snapshot(0, { pools: {}, routes: {} }) });
    await waitFor(() => applier.current?.version === 0, 5_000, 'version 0');
    cp.calls[0]!.write({ config: snapshot(1, simpleConfig([])) });
    await waitFor(() => applier.appliedVersion() === 1, 5_000, 'version 1');
  });

  it('reconnects after the control plane dies, reports its version and re-ACKs the same snapshot', async () => {
    const cp = await new FakeControlPlane().start();
    const config = simpleConfig(['10.0.0.1:80']);
    cp.onHello = (call) => call.write({ config: snapshot(3, config) });
    const { applier, client, connections } = node([cp.address]);
    client.start();
    await waitFor(() => cp.of('ack').length === 1, 5_000, 'first ack');
    const table = applier.current;
    cp.kill();
    await waitFor(() => client.connectedTo === undefined, 5_000, 'disconnect');
    expect(applier.current).toBe(table); // keeps serving

    const again = await new FakeControlPlane().start(cp.port);
    cleanup.push(() => again.kill());
    again.onHello = (call) => call.write({ config: snapshot(3, config) });
    await waitFor(() => again.of('ack').length === 1, 10_000, 'ack after reconnect');
    expect(again.of('hello')[0]!.hello!.cachedVersion).toBe(3);
    expect(again.of('ack')[0]!.ack!.version).toBe(3);
    expect(applier.current).toBe(table);
    expect(connections).toEqual([true, false, true]);
  });

  it('tries the next address when one is down or never answers', async () => {
    const mute = await new FakeControlPlane().start(); // accepts the stream, never pushes
    const cp = await new FakeControlPlane().start();
    cleanup.push(
      () => mute.kill(),
      () => cp.kill(),
    );
    cp.onHello = (call) => call.write({ config: snapshot(1, simpleConfig([])) });
    const { client } = node([await deadAddress(), mute.address, cp.address]);
    client.start();
    await waitFor(() => cp.of('ack').length === 1, 10_000, 'ack from the third address');
    expect(mute.of('hello')).toHaveLength(1);
    expect(client.connectedTo).toBe(cp.address);
  });
});
