/**
 * shardmind as the bench measures it: raw NATS requests (msgpack, no SDK connection) to one shard's leader
 * (`sm.shard.bench.<op>`) and through the router (`sm.mem.<op>`), over the same workload as the Redis peer, a
 * recall's reply turned into facts by the SDK's own conversion, as an agent's recall would be; and
 * the lost-writes check — two writers on their own connections remember at once, the host is restarted, and every
 * acknowledged fact is read back by id. Two more ops go through the TypeScript SDK on the same connection, straight
 * to the shard: `remember_sdk`, whose concurrent calls travel as `remember_batch` requests
 * (client/remember-batcher.ts), and `recall_sdk`, whose concurrent calls travel as `recall_batch` requests
 * (client/recall-batcher.ts) — which the raw ops, one message per operation as any language's client sends, do not.
 */
import { connect, type NatsConnection } from 'nats';
import { connect as connectClient, fromRecallReply, ShardmindError, Transport, type FactInput, type ShardmindClient } from '../client/index.ts';
import { RECALL_TABLE_COLUMNS, memSubject, shardSubject, type RecallReply, type RecallTableReply } from '../protocol/index.ts';
import type { BenchContext } from './context.ts';
import type { LostWrites } from './peers/server-memory.ts';
import type { MemoryTarget, TargetOp } from './target.ts';
import { factAt, queryTextAt } from './workload.ts';

export const BENCH_DOMAIN = 'bench';
const RECALL_LIMIT = 10;
const TIMEOUT_MS = 10_000;
/** Remembers in flight while preloading: enough to fill the leader's group commit. */
const PRELOAD_IN_FLIGHT = 256;

interface ReplyBody {
  readonly facts?: readonly unknown[];
  readonly factId?: string;
  readonly seq?: number;
  readonly fact?: { readonly id: string };
}

/** Retryable errors are retried like the SDK does (same body, so the same opId), within this budget. */
const RETRY_BUDGET_MS = 30_000;
const RETRY_BACKOFF_MS = [10, 50, 100, 250, 500, 1000] as const;

/** Counts of retried attempts by error code, for the report (a retry is part of the latency it lands in). */
export const retries: Record<string, number> = {};

/** One transport per connection: the SDK's own (`client/transport.ts`), so a request costs what an agent's does. */
const transports = new WeakMap<NatsConnection, Transport>();

/**
 * One request, msgpack both ways, through the SDK's transport (one reply subscription per connection, the reply
 * decoded and its error envelope unwrapped). A retryable error (NOT_LEADER, UNAVAILABLE, a timeout, …) is retried
 * with backoff within RETRY_BUDGET_MS, as a real client would; anything else is thrown with its code.
 */
export async function call(nc: NatsConnection, subject: string, body: object): Promise<ReplyBody> {
  let transport = transports.get(nc);
  if (transport === undefined) transports.set(nc, (transport = new Transport(nc, 'msgpack')));
  const deadline = Date.now() + RETRY_BUDGET_MS;
  for (let attempt = 0; ; attempt++) {
    try {
      return await transport.request<ReplyBody>(subject, body, TIMEOUT_MS);
    } catch (err) {
      if (!(err instanceof ShardmindError)) throw err;
      if (!err.retryable || Date.now() > deadline) throw new Error(`${subject}: ${err.code}: ${err.message}`);
      retries[err.code] = (retries[err.code] ?? 0) + 1;
    }
    await new Promise((r) => setTimeout(r, RETRY_BACKOFF_MS[Math.min(attempt, RETRY_BACKOFF_MS.length - 1)]));
  }
}

export function rememberBody(i: number, agent = 'bench'): Record<string, unknown> {
  const f = factAt(i);
  return {
    v: 1,
    agent,
    domain: BENCH_DOMAIN,
    opId: `bench-${agent}-${i}`,
    fact: { text: f.text, subject: f.subject, predicate: f.predicate, object: f.object, confidence: 0.8 },
  };
}

/** A recall as the TypeScript client sends it: the table layout (decisions §28), its columns known. */
function recallBody(i: number, stored: number): Record<string, unknown> {
  return { v: 1, agent: 'bench', domain: BENCH_DOMAIN, query: queryTextAt(i, stored), limit: RECALL_LIMIT, layout: 'table', knownColumns: RECALL_TABLE_COLUMNS.length };
}

/** Runs `op(i)` for i in [from, to) with `inFlight` outstanding; throws on the first failure. */
export async function pump(from: number, to: number, inFlight: number, op: (i: number) => Promise<unknown>): Promise<void> {
  let next = from;
  const worker = async (): Promise<void> => {
    while (next < to) await op(next++);
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, Math.max(0, to - from)) }, worker));
}

export function shardmindTarget(nc: NatsConnection, opts: { readonly router: boolean; processes(): Readonly<Record<string, number>> }): MemoryTarget {
  const direct = (op: string): string => shardSubject(BENCH_DOMAIN, op);
  // The reply is turned into the client's facts (dates and all) by the client's own code: the work an agent's
  // recall does on its side, whichever layout the answer came in.
  const recall = (subject: string) => async (i: number, stored: number): Promise<number> =>
    fromRecallReply((await call(nc, subject, recallBody(i, stored))) as unknown as RecallReply | RecallTableReply).facts.length;
  const remember = (subject: string) => async (i: number): Promise<number> => {
    await call(nc, subject, rememberBody(i));
    return 1;
  };
  let sdk: Promise<ShardmindClient> | undefined;
  let sdkClient: ShardmindClient | undefined;
  const client = async (): Promise<ShardmindClient> => {
    sdk ??= connectClient({ connection: nc, agent: 'bench', direct: true, timeoutMs: TIMEOUT_MS, deadlineMs: RETRY_BUDGET_MS });
    return (sdkClient = await sdk);
  };
  const rememberSdk = async (i: number): Promise<number> => {
    const b = rememberBody(i);
    await (sdkClient ?? (await client())).remember(b['fact'] as FactInput, { domain: BENCH_DOMAIN, opId: b['opId'] as string });
    return 1;
  };
  // The same recall through the SDK: the same query text and limit, the table layout with its columns known, the
  // reply turned into facts; concurrent calls go together as recall_batch (client/recall-batcher.ts). Called without
  // an await before it when the client exists, so the calls a loop makes in one tick reach the batcher in that tick.
  const recallSdk = async (i: number, stored: number): Promise<number> =>
    (await (sdkClient ?? (await client())).recall({ query: queryTextAt(i, stored), domain: BENCH_DOMAIN, limit: RECALL_LIMIT })).facts.length;
  // Recalls first: every remember loop writes facts never stored before (tens of thousands per loop at ×64), so a
  // recall measured after them would search a store several times the size its row names (at "10k", a router
  // recall measured after the remember loops searched ~245k facts and cost the host 186 µs against the 36 of the
  // direct recall measured before them).
  const ops: TargetOp[] = [
    { name: 'recall_direct', kind: 'recall', run: recall(direct('recall')) },
    { name: 'recall_sdk', kind: 'recall', run: recallSdk },
  ];
  if (opts.router) ops.push({ name: 'recall_router', kind: 'recall', run: recall(memSubject('recall')) });
  ops.push(
    { name: 'remember_direct', kind: 'remember', run: remember(direct('remember')) },
    { name: 'remember_sdk', kind: 'remember', run: rememberSdk },
  );
  if (opts.router) ops.push({ name: 'remember_router', kind: 'remember', run: remember(memSubject('remember')) });
  return {
    name: 'shardmind',
    ops,
    processes: opts.processes,
    preload: (from, to) => pump(from, to, PRELOAD_IN_FLIGHT, (i) => call(nc, direct('remember'), rememberBody(i))),
    close: async () => void (await sdk)?.close(),
  };
}

/**
 * Two writers, each on its own connection, remember `n` facts at once (16 in flight each); `restart` then stops
 * and restarts the host; every acknowledged factId is fetched back with `get`.
 */
export async function measureShardmindLostWrites(ctx: BenchContext, restart: () => Promise<void>): Promise<LostWrites> {
  const n = ctx.budgets.concurrentWrites;
  const writers = await Promise.all([0, 1].map(() => connect({ servers: ctx.natsUrl, noEcho: true, noAsyncTraces: true })));
  const acked: string[] = [];
  let attempted = 0;
  try {
    await Promise.all(
      writers.map((w, k) =>
        pump(0, n, 16, async (i) => {
          attempted++;
          try {
            const r = await call(w, shardSubject(BENCH_DOMAIN, 'remember'), rememberBody(200_000_000 + k * 10_000_000 + i, `writer${k}`));
            if (r.factId) acked.push(r.factId);
          } catch {
            // Not acknowledged: the writer does not count it as written.
          }
        }),
      ),
    );
  } finally {
    await Promise.all(writers.map((w) => w.close()));
  }
  await restart();
  let present = 0;
  await pump(0, acked.length, 32, async (j) => {
    const r = await call(ctx.nc, shardSubject(BENCH_DOMAIN, 'get'), { v: 1, factId: acked[j] });
    if (r.fact?.id === acked[j]) present++;
  });
  const result = { writers: 2, attempted, acknowledged: acked.length, present, lost: acked.length - present };
  ctx.log(`shardmind, 2 writers × ${n} remembers, host restarted: ${acked.length} acknowledged, ${present} present, ${result.lost} lost`);
  return result;
}
