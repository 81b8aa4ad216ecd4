/** Loads the CP–DP gRPC contract from proto/ at run time (one source of truth for both sides). */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const PROTO_FILE = fileURLToPath(new URL('../../../../proto/lb/v1/discovery.proto', import.meta.url));

export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  arrays: true,
  oneofs: true,
};

export interface DiscoveryPackage {
  service: grpc.ServiceDefinition;
  Client: grpc.ServiceClientConstructor;
}

let cached: DiscoveryPackage | undefined;

export function loadDiscovery(): DiscoveryPackage {
  if (cached) return cached;
  const definition = protoLoader.loadSync(PROTO_FILE, PROTO_LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    lb: { v1: { ConfigDiscovery: grpc.ServiceClientConstructor } };
  };
  const Client = pkg.lb.v1.ConfigDiscovery;
  cached = { service: Client.service, Client };
  return cached;
}

/**
 * Keepalive settings both sides use so a dead peer (power loss, partition) is noticed in seconds,
 * not at the next TCP timeout. The server must permit the client's ping rate or it sends GOAWAY.
 */
export const KEEPALIVE = {
  timeMs: 5_000,
  timeoutMs: 3_000,
} as const;
