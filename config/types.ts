/**
 * The shape of `cluster.config.ts`: which Minis exist, which domains memory is split into, and which Mini leads
 * (and which stand by for) each domain. `defineConfig` gives editors the types; `loadConfig` fills defaults and
 * validates with errors that name the field.
 */
import type { PredicateSpec } from '../shards/index.ts';

export interface NodeConfig {
  /** The Mini's name ("mini-1"): a subject token, so [a-z0-9_-]. */
  readonly name: string;
  /** NATS URLs a host on this Mini connects to (its own server first). */
  readonly nats: readonly string[];
  /** How `shardmind nats-config --node` writes this Mini's nats-server config. */
  readonly natsServer?: {
    /** The address other Minis reach this one at (routes) and the server listens on. */
    readonly host: string;
    /** Client port, default 4222. */
    readonly port?: number;
    /** Cluster (route) port, default 6222. */
    readonly clusterPort?: number;
    /** JetStream store dir, default `<dataDir>/nats`. */
    readonly storeDir?: string;
  };
}

export interface DomainConfig {
  /** Subject token and stream name part: /^[a-z][a-z0-9_]{0,31}$/. */
  readonly name: string;
  /** One sentence; also trains the classifier. */
  readonly description: string;
  /** Example requests and memories of this domain: the classifier's starting vocabulary. */
  readonly seeds: readonly string[];
  /** Per-predicate rules for this domain. */
  readonly predicates?: Readonly<Record<string, PredicateSpec>>;
  /** Rules for predicates not listed. Default `{ cardinality: 'many', halfLifeDays: 30 }`. */
  readonly defaultPredicate?: PredicateSpec;
  /** This domain's log compaction, over the cluster's `compaction` field by field; `false` disables it here. */
  readonly compaction?: CompactionConfig | false;
}

export interface PlacementConfig {
  /** The node whose shard actor leads (accepts writes). */
  readonly leader: string;
  /** Nodes that tail the log as hot standbys, in failover preference order. */
  readonly standbys?: readonly string[];
}

export interface LimitsConfig {
  /** Largest request payload accepted (TOO_LARGE above). Default 65536. */
  readonly maxPayloadBytes?: number;
  /** How long a request with `minSeq` may wait for the shard to apply it. Default 2000. */
  readonly minSeqWaitMs?: number;
  /** Most facts one recall returns. Default 100. */
  readonly maxRecallLimit?: number;
  /**
   * A read on `sm.replica.<domain>.<op>` without `maxStaleMs` may be this stale (ms). Default 1000: four of the
   * default 250 ms heartbeats, so a caught-up follower qualifies between beats and under steady writes, and below
   * the default 1500 ms lease, so a follower that stopped hearing its leader passes reads on before a failover.
   */
  readonly replicaMaxStaleMs?: number;
}

export interface ReplicationConfig {
  /** Stream replicas: default 3 when the cluster has ≥ 3 nodes, else 1. */
  readonly replicas?: number;
  /** A leader silent this long is presumed dead. Default 1500. */
  readonly leaseMs?: number;
  /** How often hosts heartbeat. Default 250. */
  readonly heartbeatMs?: number;
}

/**
 * Log compaction by snapshot (docs/operations.md, "Log compaction"): the leader copies its store into the domain's
 * snapshot bucket and purges the log below it, so the log (and a new replica's catch-up) stops growing with the
 * shard's whole history. `shardmind compact <domain>` does it on demand whatever these say.
 */
export interface CompactionConfig {
  /**
   * Compact automatically once this many entries were applied since the newest snapshot. Default 100000; 0
   * disables the automatic trigger.
   */
  readonly everyEntries?: number;
  /**
   * Entries kept in the log below the snapshot's sequence (≥ 1), so a replica a little behind catches up from the
   * log instead of downloading a snapshot. Default 1000.
   */
  readonly retainEntries?: number;
  /** Snapshots kept per domain (≥ 1); older ones are deleted after each compaction. Default 2. */
  readonly keepSnapshots?: number;
  /**
   * Before each compaction, forget facts superseded or retracted more than this many days ago (their text leaves
   * the store; history keeps what was believed more recently). Default 0: keep every closed fact.
   */
  readonly pruneInactiveDays?: number;
  /**
   * Before each compaction, forget active facts whose confidence has decayed below this (they left recall long
   * ago). Default 0: keep them.
   */
  readonly pruneDecayedBelow?: number;
}

export interface RouterConfig {
  /** Recall fans out to every domain with p ≥ top.p − margin … Default 0.25. */
  readonly fanoutMargin?: number;
  /** … and p ≥ floor. Default 0.15. */
  readonly fanoutFloor?: number;
  /** A task re-routes when another domain's evidence beats the current one's by this much. Default 0.2. */
  readonly rerouteMargin?: number;
  /** How long a fanned-out domain may take before it is reported missing. Default 1500. */
  readonly shardTimeoutMs?: number;
  /** A module exporting `createClassifier(config)` to replace the built-in lexical classifier. */
  readonly classifierModule?: string;
}

export interface ClusterConfigInput {
  readonly cluster?: { readonly name?: string };
  readonly nodes: readonly NodeConfig[];
  readonly domains: readonly DomainConfig[];
  readonly placement: Readonly<Record<string, PlacementConfig>>;
  /** Where hosts keep LMDB files (one subdirectory per node and domain). Default `./.shardmind`. */
  readonly dataDir?: string;
  readonly limits?: LimitsConfig;
  readonly replication?: ReplicationConfig;
  readonly router?: RouterConfig;
  /** Log compaction for every domain (a domain may override it); `false` disables the automatic trigger. */
  readonly compaction?: CompactionConfig | false;
}

/** A validated config with every default filled in. */
export interface ClusterConfig {
  readonly cluster: { readonly name: string };
  readonly nodes: readonly NodeConfig[];
  readonly domains: readonly DomainConfig[];
  readonly placement: Readonly<Record<string, Required<PlacementConfig>>>;
  readonly dataDir: string;
  readonly limits: Required<LimitsConfig>;
  readonly replication: Required<ReplicationConfig>;
  readonly router: Required<Omit<RouterConfig, 'classifierModule'>> & { readonly classifierModule?: string };
  /** The cluster-wide compaction settings, defaults filled (`compactionOf` merges a domain's own). */
  readonly compaction: Required<CompactionConfig>;
}

/** Identity helper that gives `cluster.config.ts` its types. */
export function defineConfig(config: ClusterConfigInput): ClusterConfigInput {
  return config;
}
