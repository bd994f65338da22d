/**
 * The smallest real cluster for client and edge tests: one Mini (`mini-1`) leading calendar, email and files, one
 * replica per stream, a short `minSeq` wait so a TIMEOUT test stays quick.
 */
import type { ClusterConfigInput } from '../../config/index.ts';

export const DOMAINS = ['calendar', 'email', 'files'] as const;
export const NODE = 'mini-1';

export function oneMiniConfig(natsUrl: string, limits: ClusterConfigInput['limits'] = {}): ClusterConfigInput {
  return {
    cluster: { name: 'test' },
    nodes: [{ name: NODE, nats: [natsUrl] }],
    domains: DOMAINS.map((name) => ({
      name,
      description: `${name} memory`,
      seeds: [`${name} things`],
      predicates: { prefers: { cardinality: 'one', halfLifeDays: 30 } },
    })),
    placement: Object.fromEntries(DOMAINS.map((d) => [d, { leader: NODE, standbys: [] }])),
    replication: { replicas: 1 },
    limits: { minSeqWaitMs: 300, ...limits },
  };
}
