/**
 * The smallest real cluster for client and edge tests: one Mini (`mini-1`) leading calendar, email and files, one
 * replica per stream, a short `minSeq` wait so a TIMEOUT test stays quick.
 */
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { connect, type ConnectOptions, type ShardmindClient } from '../../client/index.ts';
import type { ClusterConfigInput } from '../../config/index.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';

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

/** A started one-Mini cluster and an SDK client on it; `stop()` ends all three (idempotent parts, any order of failure). */
export interface OneMiniClient {
  readonly nats: NatsServerProcess;
  readonly hosts: HostCluster;
  readonly client: ShardmindClient;
  stop(): Promise<void>;
}

/** nats-server, the one Mini's host, and a client connected with `options` (`servers` is the server's URL). */
export async function startOneMiniClient(options: Omit<ConnectOptions, 'servers' | 'connection'>): Promise<OneMiniClient> {
  const nats = await startNatsServer();
  let hosts: HostCluster | undefined;
  try {
    hosts = await startHosts({ config: oneMiniConfig(nats.url) });
    const client = await connect({ ...options, servers: nats.url });
    const started = hosts;
    return {
      nats,
      hosts: started,
      client,
      stop: async () => {
        await client.close().catch(() => undefined);
        await started.stop();
        await nats.destroy();
      },
    };
  } catch (err) {
    await hosts?.stop();
    await nats.destroy();
    throw err;
  }
}
