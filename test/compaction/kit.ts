/**
 * What the compaction tests share: a real 3-node NATS cluster with three `shardmind host` processes, a config with
 * compaction settings small enough to see (a few entries kept below a snapshot), a client that remembers facts and
 * records them, and checks on the log's first sequence and the snapshot bucket.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { connect as natsConnect, type NatsConnection } from 'nats';
import { connect } from '../../client/index.ts';
import type { ClusterConfigInput, DomainConfig } from '../../config/index.ts';
import { SnapshotBucket, type StoredSnapshot } from '../../actors/index.ts';
import { logStream } from '../../protocol/index.ts';
import { startThreeMinis, type Ack, type FaultCluster } from '../failover/fault-kit.ts';

export const NODES = ['mini-1', 'mini-2', 'mini-3'] as const;

/** A compaction test's cluster: the fault tests' three Minis. */
export type CompactionCluster = FaultCluster;

/**
 * Three Minis. `email`: led by mini-1, both others standing by, manual compaction only, one log message kept below
 * a snapshot (the snapshot's own: the purge is as deep as it can be). Extra domains as given.
 */
export function compactionConfig(urls: readonly string[], extra: { domains?: DomainConfig[]; placement?: ClusterConfigInput['placement'] } = {}): ClusterConfigInput {
  return {
    cluster: { name: 'compaction' },
    nodes: NODES.map((name, i) => ({ name, nats: [urls[i]!, ...urls.filter((_, j) => j !== i)] })),
    domains: [{ name: 'email', description: 'mail', seeds: ['send an email'] }, ...(extra.domains ?? [])],
    placement: { email: { leader: 'mini-1', standbys: ['mini-2', 'mini-3'] }, ...(extra.placement ?? {}) },
    replication: { replicas: 3, leaseMs: 1500, heartbeatMs: 250 },
    compaction: { everyEntries: 0, retainEntries: 1, keepSnapshots: 2 },
  };
}

export function startCompactionCluster(configOf: (urls: readonly string[]) => ClusterConfigInput): Promise<CompactionCluster> {
  return startThreeMinis(configOf);
}

/**
 * Remembers `count` facts in `domain` through the client (direct to the shard), `parallel` at a time (the leader
 * may group concurrent writes into one log message), returning the acknowledgements.
 */
export async function rememberFacts(urls: readonly string[], domain: string, count: number, tag = 'fact', parallel = 20): Promise<Ack[]> {
  const nc = await natsConnect({ servers: [...urls], maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  const client = await connect({ connection: nc, agent: 'compaction-test', direct: true, deadlineMs: 20_000 });
  const acks: Ack[] = [];
  try {
    for (let i = 0; i < count; i += parallel) {
      const n = Math.min(parallel, count - i);
      const rs = await Promise.all(
        Array.from({ length: n }, (_, j) =>
          client.remember({ text: `${tag} ${i + j} about the mailbox`, subject: `${tag}-${(i + j) % 7}`, predicate: 'noted', object: String(i + j) }, { domain }),
        ),
      );
      rs.forEach((r) => acks.push({ writer: 0, opId: r.opId, factId: r.factId, seq: r.seq, startedAt: 0, ackedAt: Date.now() }));
    }
  } finally {
    await client.close();
    await nc.close();
  }
  return acks;
}

/** The log's first and last sequence, from the stream leader. */
export async function logBoundsOf(nc: NatsConnection, domain: string): Promise<{ firstSeq: number; lastSeq: number }> {
  const jsm = await nc.jetstreamManager({ checkAPI: false });
  const info = await jsm.streams.info(logStream(domain));
  return { firstSeq: info.state.first_seq, lastSeq: info.state.last_seq };
}

/** Every snapshot of `domain` in its bucket, oldest first. */
export async function snapshotsOf(nc: NatsConnection, domain: string): Promise<StoredSnapshot[]> {
  const bucket = await SnapshotBucket.open(nc.jetstream(), domain, 3);
  return bucket.list();
}

/** Directories left beside a node's stores (an install's `-incoming` / `-replaced`, a leader's `-snapshot` copy). */
export function strayDirs(dataDir: string, node: string): string[] {
  try {
    return readdirSync(join(dataDir, node)).filter((n) => /-(incoming|replaced|snapshot)$/.test(n));
  } catch {
    return [];
  }
}
