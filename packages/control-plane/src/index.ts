/** The control plane as a library: what tests and the local stack build on. */
export { buildApp, type AppOptions } from './app.js';
export { ERROR_CODES, ApiError, StoreUnavailableError, StoreTooLargeError, type ErrorCode } from './errors.js';
export { CpMetrics } from './metrics.js';
export { FLAGS, COMMAND, parseControlPlaneFlags, type ControlPlaneSettings } from './flags.js';
export type { ConfigStore, NodeStore, NodeRecord, VersionSummary, ListVersionsOptions } from './store/config-store.js';
export { EtcdConfigStore } from './store/etcd-config-store.js';
export { EtcdNodeStore } from './store/etcd-node-store.js';
export { createEtcdClient } from './store/etcd-client.js';
export { EtcdKeys } from './store/keys.js';
export { MemoryConfigStore, MemoryNodeStore } from './store/memory-config-store.js';
export { ConfigWriter, type WriteRequest, type WriteResult, type Precondition } from './versioning/config-writer.js';
export { ConfigFeed, type ConfigSource } from './push/config-feed.js';
export { NodeRegistry, type NodeHandle } from './push/node-registry.js';
export { StreamServer } from './push/stream-server.js';
export { NoHealthSource, type HealthSource } from './push/health-source.js';
