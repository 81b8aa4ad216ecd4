/**
 * A data plane reduced to its control-plane stream, for tests and benchmarks that need hundreds of
 * them: its own gRPC channel (no subchannel shared with the others, as separate machines would
 * have), Hello with what it runs, every push applied the way the data plane applies it — a full
 * snapshot's resources hashed, a delta checked against its base and its digest — and ACKed or
 * NACKed, reconnecting with jittered backoff when the stream ends. It keeps resource hashes, not
 * configs or routing tables; what many nodes of one process compute alike is computed once.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type * as GrpcTypes from '../../packages/shared/node_modules/@grpc/grpc-js/build/src/index.js';
import {
  configDigest,
  KEEPALIVE,
  loadDiscovery,
  resourceHash,
  resourceKey,
  resourcesOf,
  type Config,
  type ConfigSnapshot,
  type ControlMessage,
  type NodeMessage,
} from '../../packages/shared/dist/index.js';

// @grpc/grpc-js is a dependency of the packages: load the instance packages/shared uses.
const requireFromShared = createRequire(fileURLToPath(new URL('../../packages/shared/package.json', import.meta.url)));
const grpc = requireFromShared('@grpc/grpc-js') as typeof GrpcTypes;

/** What a node runs, as its Hello says it. */
export interface NodeState {
  version: number;
  historyId: string;
  digest: string;
  hashes: ReadonlyMap<string, string>;
}

export type NodeEvent =
  | { t: 'connected'; node: string; at: number }
  /** `changed`: for a delta, the resource keys it upserted, and those it removed with a leading "-". */
  | { t: 'ack'; node: string; version: number; delta: boolean; bytes: number; changed: string[]; at: number }
  | { t: 'nack'; node: string; version: number; error: string; at: number }
  | { t: 'closed'; node: string; reason: string; at: number };

/** Now, as milliseconds since the epoch with sub-millisecond precision (comparable across processes). */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

type Call = GrpcTypes.ClientDuplexStream<NodeMessage, ControlMessage & { bytes?: number }>;

/** A client class whose deserializer also records each message's size (what the node received). */
function measuringClient(): GrpcTypes.ServiceClientConstructor {
  const service = { ...loadDiscovery().service } as Record<string, GrpcTypes.MethodDefinition<unknown, unknown>>;
  const method = service.Stream!;
  service.Stream = {
    ...method,
    responseDeserialize: (buffer: Buffer) => Object.assign(method.responseDeserialize(buffer) as object, { bytes: buffer.length }),
  };
  return grpc.makeGenericClientConstructor(service as GrpcTypes.ServiceDefinition, 'ConfigDiscovery');
}

/** Results shared by the nodes of one process: each distinct push is hashed and checked once. */
export class ApplyCache {
  private readonly fulls = new Map<string, NodeState>();
  private readonly deltas = new Map<string, NodeState | string>();

  full(snapshot: ConfigSnapshot): NodeState {
    const key = `${snapshot.historyId} ${snapshot.version} ${snapshot.digest}`;
    let state = this.fulls.get(key);
    if (state === undefined) {
      const hashes = new Map<string, string>();
      for (const r of resourcesOf(JSON.parse(snapshot.configJson) as Config)) hashes.set(r.key, resourceHash(JSON.stringify(r.value)));
      state = { version: snapshot.version, historyId: snapshot.historyId, digest: configDigest(hashes), hashes };
      this.fulls.set(key, state);
    }
    return state;
  }

  /** The state a delta leads to from `base`, or why it does not apply. */
  delta(base: NodeState, snapshot: ConfigSnapshot): NodeState | string {
    if (base.historyId !== snapshot.historyId || base.version !== snapshot.baseVersion) {
      return `DP_ERR_SNAPSHOT_BASE_MISMATCH: runs version ${base.version} of "${base.historyId}"`;
    }
    const key = `${base.digest} ${snapshot.nonce}`;
    let result = this.deltas.get(key);
    if (result === undefined) {
      const hashes = new Map(base.hashes);
      for (const r of snapshot.removed) hashes.delete(resourceKey(r.type, r.name));
      for (const r of snapshot.upserted) hashes.set(resourceKey(r.type, r.name), resourceHash(r.json));
      const digest = configDigest(hashes);
      result =
        digest === snapshot.digest
          ? { version: snapshot.version, historyId: snapshot.historyId, digest, hashes }
          : 'DP_ERR_SNAPSHOT_BASE_MISMATCH: the delta leads to another digest';
      this.deltas.set(key, result);
    }
    return result;
  }
}

export interface SimulatedNodeOptions {
  id: string;
  /** Control planes, tried in turn. */
  addresses: readonly string[];
  cache: ApplyCache;
  onEvent: (event: NodeEvent) => void;
  /** First reconnect delay cap (ms), doubling per failed attempt up to 10 s; full jitter. Default 200. */
  initialBackoffMs?: number;
}

export class SimulatedNode {
  private static Client: GrpcTypes.ServiceClientConstructor | undefined;
  state: NodeState | undefined;
  private call: Call | undefined;
  private client: GrpcTypes.Client | undefined;
  private failures = 0;
  private next = 0;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: SimulatedNodeOptions) {}

  start(): void {
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.call?.cancel();
    this.client?.close();
  }

  private connect(): void {
    if (this.stopped) return;
    SimulatedNode.Client ??= measuringClient();
    const address = this.options.addresses[this.next++ % this.options.addresses.length]!;
    const client = new SimulatedNode.Client(address, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
      'grpc.keepalive_time_ms': KEEPALIVE.timeMs,
      'grpc.keepalive_timeout_ms': KEEPALIVE.timeoutMs,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
    });
    const call = (client as unknown as { Stream(): Call }).Stream();
    this.client = client;
    this.call = call;
    let heard = false;
    call.on('data', (message: ControlMessage & { bytes?: number }) => {
      if (!heard) {
        heard = true;
        this.failures = 0;
        this.options.onEvent({ t: 'connected', node: this.options.id, at: now() });
      }
      this.handle(call, message);
    });
    call.on('error', () => undefined);
    call.on('status', (status: GrpcTypes.StatusObject) => {
      client.close();
      if (this.call !== call || this.stopped) return;
      this.call = undefined;
      if (heard) this.options.onEvent({ t: 'closed', node: this.options.id, reason: `${status.code}: ${status.details}`, at: now() });
      this.failures = heard ? 0 : this.failures + 1;
      const cap = Math.min(10_000, (this.options.initialBackoffMs ?? 200) * 2 ** Math.min(this.failures, 30));
      this.timer = setTimeout(() => this.connect(), Math.floor(Math.random() * cap));
    });
    const state = this.state;
    call.write({
      hello: {
        nodeId: this.options.id,
        zone: 'sim',
        cachedVersion: state?.version ?? 0,
        address: '127.0.0.1:1',
        cachedHealthRevision: 0,
        cachedHistoryId: state?.historyId ?? '',
        cachedDigest: state?.digest ?? '',
      },
    });
  }

  private handle(call: Call, message: ControlMessage & { bytes?: number }): void {
    if (message.health) {
      call.write({ ack: { nonce: message.health.nonce, version: message.health.revision, kind: 'PUSH_KIND_HEALTH' } });
      return;
    }
    const snapshot = message.config;
    if (!snapshot) return;
    const delta = snapshot.configJson === '';
    let result: NodeState | string;
    try {
      if (!delta) result = this.options.cache.full(snapshot);
      else result = this.state === undefined ? 'DP_ERR_SNAPSHOT_BASE_MISMATCH: runs nothing' : this.options.cache.delta(this.state, snapshot);
    } catch (err) {
      result = `DP_ERR_SNAPSHOT_JSON: ${(err as Error).message}`;
    }
    const { nonce, version } = snapshot;
    if (typeof result === 'string') {
      call.write({ nack: { nonce, version, error: result, kind: 'PUSH_KIND_CONFIG' } });
      this.options.onEvent({ t: 'nack', node: this.options.id, version, error: result, at: now() });
      return;
    }
    this.state = result;
    call.write({ ack: { nonce, version, kind: 'PUSH_KIND_CONFIG' } });
    const changed = [...snapshot.upserted.map((r) => resourceKey(r.type, r.name)), ...snapshot.removed.map((r) => `-${resourceKey(r.type, r.name)}`)];
    this.options.onEvent({ t: 'ack', node: this.options.id, version, delta, bytes: message.bytes ?? 0, changed, at: now() });
  }
}
