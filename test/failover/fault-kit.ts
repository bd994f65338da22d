/**
 * What every fault test shares: a real 3-node NATS cluster on loopback with three `shardmind host` processes (R3
 * streams), writers that keep remembering through the client SDK (its retries ride over gaps, as an agent's would)
 * and record every acknowledged write, checks that every acknowledged write is on a replica, replica digests, and
 * the `FIGURES {json}` line each test prints.
 */
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as natsConnect, type NatsConnection } from 'nats';
import { startNatsCluster, waitForJetStream, type NatsCluster } from '../../cli/index.ts';
import { connect, type ShardmindClient } from '../../client/index.ts';
import type { ClusterConfigInput } from '../../config/index.ts';
import { PREV_HEADER, entryHash } from '../../actors/index.ts';
import { ctlSubject, decodePayload, encodePayload, logStream, unwrapReply } from '../../protocol/index.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';

export const DOMAIN = 'email';
export const NODES = ['mini-1', 'mini-2', 'mini-3'] as const;

/** Three Minis; email led by mini-1 with mini-2 then mini-3 standing by; the shipped lease and heartbeat. */
export function threeMiniConfig(urls: readonly string[], o: FaultClusterOptions = {}): ClusterConfigInput {
  const nodes = NODES.map((name, i) => ({
    name,
    nats: o.natsOf ? o.natsOf(i, urls) : [urls[i]!, ...urls.filter((_, j) => j !== i)],
  }));
  return {
    cluster: { name: 'faults' },
    nodes,
    domains: [
      { name: 'email', description: 'mail', seeds: ['send an email'] },
      { name: 'files', description: 'documents', seeds: ['save the file'] },
    ],
    placement: {
      email: { leader: 'mini-1', standbys: ['mini-2', 'mini-3'] },
      files: { leader: 'mini-2', standbys: ['mini-3', 'mini-1'] },
    },
    replication: { replicas: 3, leaseMs: o.leaseMs ?? 1500, heartbeatMs: o.heartbeatMs ?? 250 },
  };
}

export interface FaultCluster {
  readonly nats: NatsCluster;
  readonly hosts: HostCluster;
  /** The test's own connection (control requests, checks). */
  readonly nc: NatsConnection;
  readonly config: ClusterConfigInput;
  /** Stops hosts and servers and removes their dirs. Idempotent. */
  destroy(): Promise<void>;
}

export interface FaultClusterOptions {
  readonly leaseMs?: number;
  readonly heartbeatMs?: number;
  /** The NATS URLs node `i` may use (default: its own server first, then the others). */
  readonly natsOf?: (i: number, urls: readonly string[]) => string[];
}

export async function startFaultCluster(o: FaultClusterOptions = {}): Promise<FaultCluster> {
  return startThreeMinis((urls) => threeMiniConfig(urls, o));
}

/**
 * Three routed nats-servers, the config `configOf` makes for their URLs, and a host process per Mini in it; the
 * test's own connection once JetStream answers. On a failure midway, what was started is stopped.
 */
export async function startThreeMinis(
  configOf: (urls: readonly string[]) => ClusterConfigInput,
  o: { readonly envOf?: (node: string) => Readonly<Record<string, string>> | undefined } = {},
): Promise<FaultCluster> {
  const nats = await startNatsCluster(3);
  let hosts: HostCluster | undefined;
  let nc: NatsConnection | undefined;
  try {
    nc = await natsConnect({ servers: nats.urls, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    await waitForJetStream(nc);
    const config = configOf(nats.urls);
    hosts = await startHosts({ config, readyTimeoutMs: 60_000, ...(o.envOf ? { envOf: o.envOf } : {}) });
    const h = hosts;
    const c = nc;
    let destroyed: Promise<void> | undefined;
    return {
      nats,
      hosts: h,
      nc: c,
      config,
      destroy: () =>
        (destroyed ??= (async () => {
          await h.stop().catch(() => undefined);
          await c.close().catch(() => undefined);
          await nats.destroy();
        })()),
    };
  } catch (err) {
    await hosts?.stop().catch(() => undefined);
    await nc?.close().catch(() => undefined);
    await nats.destroy();
    throw err;
  }
}

/** A control request to one host (msgpack), its reply or its error thrown. */
export async function ctl<T>(nc: NatsConnection, node: string, op: string, body: Record<string, unknown> = {}, timeoutMs = 3_000): Promise<T> {
  const m = await nc.request(ctlSubject(node, op), encodePayload({ v: 1, ...body }, 'msgpack'), { timeout: timeoutMs });
  return unwrapReply<T>(decodePayload(m.data, 'msgpack'));
}

export interface ShardView {
  readonly domain: string;
  readonly role: string;
  readonly state: string;
  readonly appliedSeq: number;
  readonly epoch: number;
  readonly lastError?: string;
}

/** This node's view of `domain`, or undefined when it does not answer. */
export async function shardOn(nc: NatsConnection, node: string, domain = DOMAIN): Promise<ShardView | undefined> {
  try {
    const s = await ctl<{ shards: ShardView[] }>(nc, node, 'status', {}, 1_000);
    return s.shards.find((x) => x.domain === domain);
  } catch {
    return undefined;
  }
}

/** The node whose actor leads `domain` in the highest epoch, among those that answer. */
export async function leaderOf(nc: NatsConnection, domain = DOMAIN, nodes: readonly string[] = NODES): Promise<{ node: string; view: ShardView } | undefined> {
  const views = await Promise.all(nodes.map(async (node) => ({ node, view: await shardOn(nc, node, domain) })));
  let best: { node: string; view: ShardView } | undefined;
  for (const v of views) {
    if (v.view?.role === 'leader' && v.view.state === 'leading' && (!best || v.view.epoch > best.view.epoch)) {
      best = { node: v.node, view: v.view };
    }
  }
  return best;
}

/** Polls `probe` every 20 ms until it returns a value, or throws at the deadline. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface Ack {
  readonly writer: number;
  readonly opId: string;
  readonly factId: string;
  readonly seq: number;
  /** When the call was made and when it resolved (ms). */
  readonly startedAt: number;
  readonly ackedAt: number;
}

/**
 * `count` writers, each remembering one fact every `everyMs` through its own client on its own connection (to a
 * different server each), recording every acknowledged write and every error the client surfaced (after its own
 * retries, within a 15 s deadline).
 */
export async function startWriters(urls: readonly string[], o: { count?: number; everyMs?: number; domain?: string; connectTimeoutMs?: number } = {}) {
  const count = o.count ?? 4;
  const domain = o.domain ?? DOMAIN;
  const acks: Ack[] = [];
  const errors: { writer: number; at: number; message: string }[] = [];
  /** Every retry the clients made (the code that caused it), for the figures. */
  const retries: { writer: number; at: number; code: string; attempt: number }[] = [];
  const clients: ShardmindClient[] = [];
  const conns: NatsConnection[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const ordered = [...urls.slice(i % urls.length), ...urls.slice(0, i % urls.length)];
      const nc = await natsConnect({ servers: ordered, maxReconnectAttempts: -1, reconnectTimeWait: 100, noRandomize: true, ...(o.connectTimeoutMs ? { timeout: o.connectTimeoutMs } : {}) });
      conns.push(nc);
      clients.push(
        await connect({
          connection: nc,
          agent: `writer-${i}`,
          direct: true,
          deadlineMs: 15_000,
          timeoutMs: 1_000,
          onRetry: ({ code, attempt }) => void retries.push({ writer: i, at: Date.now(), code, attempt }),
        }),
      );
    }
  } catch (err) {
    // The caller gets no handle to stop: close what was opened, or its reconnecting connections keep the file alive.
    await closeWriters(clients, conns);
    throw err;
  }
  let running = true;
  const loops = clients.map(async (client, writer) => {
    for (let k = 0; running; k++) {
      const startedAt = Date.now();
      try {
        const r = await client.remember(
          { text: `writer ${writer} note ${k}`, subject: `writer-${writer}`, predicate: 'wrote', object: String(k) },
          { domain },
        );
        acks.push({ writer, opId: r.opId, factId: r.factId, seq: r.seq, startedAt, ackedAt: Date.now() });
      } catch (err) {
        errors.push({ writer, at: Date.now(), message: (err as Error).message });
      }
      const wait = (o.everyMs ?? 10) - (Date.now() - startedAt);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  });
  return {
    acks,
    errors,
    retries,
    /** Retries by error code: `{ NOT_LEADER: 12, TIMEOUT: 1 }`. */
    retryCodes(): Record<string, number> {
      const out: Record<string, number> = {};
      for (const r of retries) out[r.code] = (out[r.code] ?? 0) + 1;
      return out;
    },
    /** Resolves once at least `n` more writes were acknowledged after this call. */
    async waitForAcks(n: number, timeoutMs = 20_000): Promise<void> {
      const target = acks.length + n;
      await eventually(`${n} more acknowledged writes`, async () => (acks.length >= target ? true : undefined), timeoutMs);
    },
    async stop(): Promise<void> {
      running = false;
      await Promise.all(loops);
      await closeWriters(clients, conns);
    },
  };
}

/** Closes every client, then every connection: one that fails to close does not keep the others open. */
async function closeWriters(clients: readonly ShardmindClient[], conns: readonly NatsConnection[]): Promise<void> {
  const failures: unknown[] = [];
  for (const c of clients) await c.close().catch((err: unknown) => void failures.push(err));
  await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
  if (failures.length > 0) throw failures[0];
}

/** The longest stretch with no acknowledged write, among acks in [from, to] (and the acks bracketing them). */
export function longestAckGap(acks: readonly Ack[], from: number, to: number): number {
  const times = acks.map((a) => a.ackedAt).sort((a, b) => a - b);
  let gap = 0;
  for (let i = 1; i < times.length; i++) {
    if (times[i]! >= from && times[i - 1]! <= to) gap = Math.max(gap, times[i]! - times[i - 1]!);
  }
  return gap;
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/**
 * Acknowledged writes missing from `node`'s replica: each fact id is fetched through the leader's `get`.
 * Returns the missing ones (must be empty).
 */
export async function missingAcks(urls: readonly string[], acks: readonly Ack[], domain = DOMAIN): Promise<Ack[]> {
  const nc = await natsConnect({ servers: [...urls], maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  const client = await connect({ connection: nc, agent: 'checker', direct: true, deadlineMs: 20_000 });
  const missing: Ack[] = [];
  try {
    for (let i = 0; i < acks.length; i += 64) {
      const chunk = acks.slice(i, i + 64);
      const found = await Promise.all(chunk.map((a) => client.get(a.factId, { domain })));
      chunk.forEach((a, j) => {
        if (!found[j]) missing.push(a);
      });
    }
  } finally {
    await client.close();
    await nc.close();
  }
  return missing;
}

/**
 * Reads the whole log of `domain` and checks its `Sm-Prev` chain: every entry that names its predecessor's hash
 * names the entry the log kept before it. Returns how many entries carry the header and the seqs where it breaks
 * (must be none: a break means a leader appended after an entry it had not read).
 */
export async function logChain(nc: NatsConnection, domain = DOMAIN, timeoutMs = 30_000): Promise<{ entries: number; chained: number; breaks: number[] }> {
  const js = nc.jetstream();
  const jsm = await nc.jetstreamManager({ checkAPI: false });
  const last = (await jsm.streams.info(logStream(domain))).state.last_seq;
  const deadline = Date.now() + timeoutMs;
  let previous: string | undefined;
  let chained = 0;
  const breaks: number[] = [];
  let seen = 0;
  while (seen < last) {
    // A fresh consumer from where the read got to: one that delivers nothing for a while (its server is catching
    // up after the fault) is replaced rather than waited on.
    const consumer = await js.consumers.get(logStream(domain), { opt_start_seq: seen + 1 });
    const batch = await consumer.fetch({ max_messages: 512, expires: 2_000 });
    for await (const m of batch) {
      if (m.seq !== seen + 1) break;
      seen = m.seq;
      const prev = m.headers?.get(PREV_HEADER);
      if (prev) {
        chained++;
        if (prev !== previous) breaks.push(m.seq);
      }
      previous = entryHash(m.data);
    }
    if (seen < last && Date.now() > deadline) throw new Error(`reading the log of ${domain} stopped at seq ${seen} of ${last}`);
  }
  // A break seen through a consumer may be the consumer's (a server just back from a freeze serving a message the
  // log did not keep): only breaks the stream leader's own copies confirm are the log's.
  const confirmed: number[] = [];
  for (const seq of breaks) {
    const [before, at] = await Promise.all([jsm.streams.getMessage(logStream(domain), { seq: seq - 1 }), jsm.streams.getMessage(logStream(domain), { seq })]);
    if (at.header?.get(PREV_HEADER) !== entryHash(before.data)) confirmed.push(seq);
  }
  return { entries: last, chained, breaks: confirmed };
}

/** Each node's `{ appliedSeq, digest }` of `domain` (via `sm.ctl.<node>.digest`). */
export async function digests(nc: NatsConnection, nodes: readonly string[], domain = DOMAIN) {
  return Promise.all(
    nodes.map(async (node) => ({ node, ...(await ctl<{ appliedSeq: number; digest: string }>(nc, node, 'digest', { domain }, 10_000)) })),
  );
}

/**
 * Waits until every node has applied the whole log (the stream's tail, asked once now); on timeout the error says
 * where each replica is.
 */
export async function waitAllApplied(nc: NatsConnection, nodes: readonly string[] = NODES, timeoutMs = 20_000, domain = DOMAIN): Promise<number> {
  const tail = await streamTail(nc, domain);
  let last: (ShardView | undefined)[] = [];
  try {
    await eventually(
      'every replica to apply the whole log',
      async () => {
        last = await Promise.all(nodes.map((n) => shardOn(nc, n, domain)));
        return last.every((v) => v && v.appliedSeq >= tail) ? true : undefined;
      },
      timeoutMs,
    );
  } catch (err) {
    const where = nodes.map((n, i) => `${n}: ${last[i] ? `${last[i]!.state} at ${last[i]!.appliedSeq}` : 'no answer'}`);
    throw new Error(`${(err as Error).message} (tail ${tail}; ${where.join(', ')})`);
  }
  return tail;
}

/** The stream's last sequence from its leader. */
export async function streamTail(nc: NatsConnection, domain = DOMAIN): Promise<number> {
  const jsm = await nc.jetstreamManager({ checkAPI: false });
  return (await jsm.streams.info(`SM_LOG_${domain.toUpperCase()}`)).state.last_seq;
}

/**
 * With `SM_KEEP_FAILED_DATA=<dir>`, a failed scenario's hosts are stopped and their LMDB files and full logs copied
 * to a fresh folder under `<dir>`, so a divergence can be examined table by table after the cluster is gone.
 */
async function keepFailedData(cluster: FaultCluster): Promise<void> {
  const keep = process.env['SM_KEEP_FAILED_DATA'];
  if (!keep) return;
  await Promise.all(cluster.hosts.hosts.map((h) => h.stop().catch(() => undefined)));
  const to = join(keep, `failed-${Date.now()}`);
  cpSync(cluster.hosts.dataDir, join(to, 'data'), { recursive: true });
  writeFileSync(join(to, 'hosts.log'), cluster.hosts.stderr());
  process.stderr.write(`kept the failed scenario's data and logs in ${to}\n`);
}

/** Prints the one line CI logs keep: `FIGURES {json}`. */
export function figures(name: string, values: Record<string, unknown>): void {
  process.stdout.write(`FIGURES ${JSON.stringify({ test: name, ...values })}\n`);
}

export type Writers = Awaited<ReturnType<typeof startWriters>>;

/**
 * One fault scenario on a fresh 3-Mini cluster. The body gets the cluster and starts its writers through `load`
 * (on all servers, or the URLs given); if it fails, the hosts' logs are printed; whatever happens, the writers stop
 * and the cluster is destroyed — after the body's own `finally` (a paused process is resumed first).
 */
export async function withFaultCluster(
  body: (cluster: FaultCluster, load: (urls?: readonly string[]) => Promise<Writers>) => Promise<void>,
  o: FaultClusterOptions = {},
): Promise<void> {
  const cluster = await startFaultCluster(o);
  let writers: Writers | undefined;
  try {
    await body(cluster, async (urls = cluster.nats.urls) => (writers = await startWriters(urls)));
  } catch (err) {
    process.stderr.write(cluster.hosts.stderr().slice(-20_000));
    await keepFailedData(cluster);
    throw err;
  } finally {
    await writers?.stop().catch(() => undefined);
    await cluster.destroy();
  }
}
