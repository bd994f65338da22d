/** Cluster configuration: types, `defineConfig`, and the loader that validates `cluster.config.ts`. */
export type {
  NodeConfig,
  DomainConfig,
  PlacementConfig,
  LimitsConfig,
  ReplicationConfig,
  RouterConfig,
  ClusterConfigInput,
  ClusterConfig,
} from './types.ts';
export { defineConfig } from './types.ts';
