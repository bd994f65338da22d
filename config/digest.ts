/**
 * A short, stable digest of the parts of a cluster config that every host must agree on, so `shardmind status` can
 * name the hosts that run a different `cluster.config.ts` (decisions §55). Hosts whose configs differ in these parts
 * disagree about more than style: a domain's first leader stamps its own predicate specs into the log (a `one`
 * predicate here is `many` there, a half-life differs), hosts place and rank standbys differently, and a host that
 * lacks a domain refuses its requests.
 *
 * What it covers: the node names, each domain's name, default predicate and per-predicate cardinality and half-life,
 * the placement (leader and standbys, in order), and the replication settings (replicas, lease, heartbeat). What it
 * leaves out may differ without harm, or differs on purpose: descriptions and seeds (the classifier also learns from
 * the shared example stream), NATS URLs, the data directory, limits, router tuning, compaction.
 *
 * Stable: keys and lists whose order carries no meaning are sorted, so two files that say the same thing in another
 * order hash alike; a standby list keeps its order (it is the failover preference).
 */
import { createHash } from 'node:crypto';
import type { PredicateSpec } from '../shards/index.ts';
import { DEFAULT_PREDICATE } from './load.ts';
import type { ClusterConfig } from './types.ts';

/** Hex characters kept: 48 bits, plenty to tell a handful of configs apart, short enough for a status line. */
export const CONFIG_DIGEST_CHARS = 12;

/** The digest of what `config` says that every host must agree on (12 hex characters). */
export function configDigest(config: ClusterConfig): string {
  const spec = (s: PredicateSpec): [string, number] => [s.cardinality, s.halfLifeDays];
  const byName = <T extends { readonly name: string }>(a: T, b: T): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const agreed = {
    nodes: config.nodes.map((n) => n.name).sort(),
    domains: [...config.domains].sort(byName).map((d) => ({
      name: d.name,
      defaultPredicate: spec(d.defaultPredicate ?? DEFAULT_PREDICATE),
      predicates: Object.keys(d.predicates ?? {})
        .sort()
        .map((p) => [p, ...spec(d.predicates![p]!)]),
    })),
    placement: Object.keys(config.placement)
      .sort()
      .map((d) => [d, config.placement[d]!.leader, [...config.placement[d]!.standbys]]),
    replication: [config.replication.replicas, config.replication.leaseMs, config.replication.heartbeatMs],
  };
  return createHash('sha256').update(JSON.stringify(agreed)).digest('hex').slice(0, CONFIG_DIGEST_CHARS);
}
