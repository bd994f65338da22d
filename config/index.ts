/** Cluster configuration: types, `defineConfig`, and the loader that validates `cluster.config.ts`. */
export type {
  NodeConfig,
  DomainConfig,
  PlacementConfig,
  LimitsConfig,
  ReplicationConfig,
  RouterConfig,
  CompactionConfig,
  ClusterConfigInput,
  ClusterConfig,
} from './types.ts';
export { defineConfig } from './types.ts';
export {
  loadConfig,
  resolveConfig,
  singleNodeConfig,
  nodeByName,
  placementsOf,
  compactionOf,
  ConfigError,
  NODE_NAME,
  DEFAULT_CONFIG_PATH,
  DEFAULT_CLUSTER_NAME,
  DEFAULT_DATA_DIR,
  DEFAULT_MAX_PAYLOAD_BYTES,
  DEFAULT_MIN_SEQ_WAIT_MS,
  DEFAULT_MAX_RECALL_LIMIT,
  DEFAULT_REPLICA_MAX_STALE_MS,
  DEFAULT_LEASE_MS,
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_PREDICATE,
  DEFAULT_COMPACT_EVERY_ENTRIES,
  DEFAULT_COMPACT_RETAIN_ENTRIES,
  DEFAULT_KEEP_SNAPSHOTS,
} from './load.ts';
export { configDigest, CONFIG_DIGEST_CHARS } from './digest.ts';
export { configWarnings } from './warnings.ts';
