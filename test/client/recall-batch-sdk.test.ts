/**
 * The SDK's batching of concurrent direct recalls (client/recall-batcher.ts), against a real host on a real
 * nats-server: concurrent recalls to one shard travel as few `recall_batch` requests and each caller gets the answer
 * its lone recall gets; a lone call is the plain `recall` request, byte for byte; `batchRecall: false` sends one
 * request per call; a reply too big for the server is asked for again in halves; a shard with no leader is retried
 * until one starts, and a call's deadline still bounds it. Against a stand-in for an older host (a responder on a
 * nats-server of its own that answers as a host from before the op did), the SDK falls back to single recalls, and
 * an item refused retryably is sent again alone.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect as natsConnect, type Msg, type NatsConnection, type Subscription } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { connect, ErrorCode, OutcomeUnknownError, ShardmindError, type ShardmindClient } from '../../client/index.ts';
import type { ClusterConfigInput } from '../../config/index.ts';
import { decodePayload, encodePayload, errorReply, shardSubject } from '../../protocol/index.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';
import { NODE, oneMiniConfig } from './one-mini.ts';

interface Ctx {
  nats: NatsServerProcess;
  hosts: HostCluster;
  late?: HostCluster;
  nc: NatsConnection;
  client: ShardmindClient;
}

/** One Mini leading calendar, email and files; `late` is led by mini-2, started only by the NOT_LEADER test. */
function config(url: string): ClusterConfigInput {
  const base = oneMiniConfig(url);
  return {
    ...base,
    nodes: [...base.nodes, { name: 'mini-2', nats: [url] }],
    domains: [...base.domains, { name: 'late', description: 'late memory', seeds: ['late things'] }],
    placement: { ...base.placement, late: { leader: 'mini-2', standbys: [] } },
  };
}

const TOPICS = ['inbox filters for newsletters', 'attachment format pdf or link', 'meeting with dana on tuesday', 'invoice reminders every month', 'quarterly report drafts'];

const sdk = suite<Ctx>('the SDK batches concurrent direct recalls');

sdk.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  try {
    ctx.hosts = await startHosts({ config: config(ctx.nats.url), nodes: [NODE] });
    ctx.nc = await natsConnect({ servers: ctx.nats.url });
    ctx.client = await connect({ servers: ctx.nats.url, agent: 'agent-a', node: NODE, direct: true });
    await ctx.client.rememberMany(
      Array.from({ length: 60 }, (_, i) => ({ text: `Note ${i} about ${TOPICS[i % TOPICS.length]} and item${i}`, subject: `person${i % 7}`, predicate: 'mentions', object: `thing${i}` })),
      { domain: 'email' },
    );
  } catch (err) {
    await ctx.client?.close();
    await ctx.nc?.close();
    await ctx.hosts?.stop();
    await ctx.nats.destroy();
    throw err;
  }
});

sdk.after(async (ctx) => {
  await ctx.client?.close();
  await ctx.nc?.close();
  await ctx.late?.stop();
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

/** Counts (and keeps) the requests on a shard's recall subjects: a plain subscriber sees every request the leader gets. */
async function spy(nc: NatsConnection, domain: string): Promise<{ counts: { recall: number; batch: number }; bodies: Uint8Array[]; stop(): void }> {
  const counts = { recall: 0, batch: 0 };
  const bodies: Uint8Array[] = [];
  const subs: Subscription[] = [
    nc.subscribe(shardSubject(domain, 'recall'), { callback: (_, m) => void (counts.recall++, bodies.push(m.data)) }),
    nc.subscribe(shardSubject(domain, 'recall_batch'), { callback: () => void counts.batch++ }),
  ];
  await nc.flush();
  return { counts, bodies, stop: () => subs.forEach((s) => s.unsubscribe()) };
}

const idsOf = (r: { facts: readonly { id: string; text: string }[] }): string[] => r.facts.map((f) => `${f.id}|${f.text}`);

sdk('concurrent direct recalls go in few requests, and each caller gets what its lone recall gets', async (ctx) => {
  const queries = Array.from({ length: 40 }, (_, i) => `${TOPICS[i % TOPICS.length]} item${i}`);
  const s = await spy(ctx.nc, 'email');
  const together = await Promise.all(queries.map((query) => ctx.client.recall({ query, domain: 'email', limit: 5 })));
  await ctx.nc.flush();
  s.stop();
  assert.ok(s.counts.batch >= 1, `batched: ${JSON.stringify(s.counts)}`);
  assert.ok(s.counts.batch + s.counts.recall <= 8, `40 calls took ${JSON.stringify(s.counts)} requests`);
  const plain = await connect({ connection: ctx.nc, agent: 'agent-a', node: NODE, direct: true, batchRecall: false });
  for (const [i, query] of queries.entries()) {
    const alone = await plain.recall({ query, domain: 'email', limit: 5 });
    assert.equal(idsOf(together[i]!), idsOf(alone), query);
    assert.equal(together[i]!.domains, ['email']);
    assert.ok(together[i]!.seqs['email']! >= 1);
  }
  assert.ok(together.every((r) => r.facts.length > 0));
});

sdk('a lone recall is the plain recall request, the same bytes as with batching off', async (ctx) => {
  const s = await spy(ctx.nc, 'email');
  const batched = await connect({ connection: ctx.nc, agent: 'agent-l', direct: true });
  const plain = await connect({ connection: ctx.nc, agent: 'agent-l', direct: true, batchRecall: false });
  const a = await batched.recall({ query: 'meeting with dana', domain: 'email' });
  const b = await plain.recall({ query: 'meeting with dana', domain: 'email' });
  await ctx.nc.flush();
  s.stop();
  assert.equal(s.counts, { recall: 2, batch: 0 });
  assert.equal([...s.bodies[0]!], [...s.bodies[1]!], 'byte for byte');
  assert.equal(idsOf(a), idsOf(b));
});

sdk('a JSON client\'s concurrent recalls are batched too, with the facts its msgpack recalls get', async (ctx) => {
  const json = await connect({ connection: ctx.nc, agent: 'agent-j', direct: true, encoding: 'json' });
  const s = await spy(ctx.nc, 'email');
  const together = await Promise.all(TOPICS.map((query) => json.recall({ query, domain: 'email', limit: 5 })));
  await ctx.nc.flush();
  s.stop();
  assert.equal(s.counts, { recall: 0, batch: 1 }, 'five calls made in one tick: one request');
  for (const [i, query] of TOPICS.entries()) assert.equal(idsOf(together[i]!), idsOf(await ctx.client.recall({ query, domain: 'email', limit: 5 })), query);
});

sdk('batchRecall: false sends one request per call', async (ctx) => {
  const plain = await connect({ connection: ctx.nc, agent: 'agent-b', direct: true, batchRecall: false });
  const s = await spy(ctx.nc, 'email');
  await Promise.all(TOPICS.map((query) => plain.recall({ query, domain: 'email' })));
  await ctx.nc.flush();
  s.stop();
  assert.equal(s.counts, { recall: TOPICS.length, batch: 0 });
});

sdk('read-your-writes: a batched recall made right after a remember sees it', async (ctx) => {
  const written = await ctx.client.remember({ text: 'The walrus ledger is kept in the green cabinet' }, { domain: 'email' });
  const s = await spy(ctx.nc, 'email');
  const [mine, ...others] = await Promise.all([
    ctx.client.recall({ query: 'walrus ledger green cabinet', domain: 'email' }),
    ...TOPICS.map((query) => ctx.client.recall({ query, domain: 'email' })),
  ]);
  s.stop();
  assert.ok(s.counts.batch >= 1, JSON.stringify(s.counts));
  assert.ok(mine!.facts.some((f) => f.id === written.factId), 'the write is seen');
  assert.ok(others.every((r) => r.seqs['email']! >= written.seq));
});

sdk('a reply too big for the server is asked for again in halves; each caller gets its facts', async (ctx) => {
  const text = (i: number): string => `Bulky archive record ${i}: ${'ledger entry with many words '.repeat(500)}`;
  await ctx.client.rememberMany(Array.from({ length: 40 }, (_, i) => ({ text: text(i) })), { domain: 'files' });
  const s = await spy(ctx.nc, 'files');
  const [a, b] = await Promise.all([0, 1].map(() => ctx.client.recall({ query: 'bulky archive record', domain: 'files', limit: 40 })));
  await ctx.nc.flush();
  s.stop();
  assert.is(a!.facts.length, 40);
  assert.equal(idsOf(a!), idsOf(b!));
  assert.equal(s.counts, { batch: 1, recall: 2 }, 'the batch (TOO_LARGE), then each alone');
});

sdk('close(): batched recalls still unanswered at its bound fail with OutcomeUnknownError, later ones are refused unsent', async (ctx) => {
  const client = await connect({ connection: ctx.nc, agent: 'agent-c', direct: true, deadlineMs: 30_000 });
  const calls = Array.from({ length: 5 }, (_, i) => client.recall({ query: `late query ${i}`, domain: 'late' }).then(() => 'answered', (e: ShardmindError) => e));
  const started = Date.now();
  await client.close({ timeoutMs: 300 });
  assert.ok(Date.now() - started < 2_000, 'close() ends at its bound');
  for (const e of await Promise.all(calls)) {
    assert.instance(e, OutcomeUnknownError);
    assert.ok((e as ShardmindError).message.startsWith('recall: the client closed'), (e as ShardmindError).message);
  }
  const after = await client.recall({ query: 'x', domain: 'email' }).catch((e: ShardmindError) => e);
  assert.instance(after, ShardmindError);
  assert.ok((after as ShardmindError).message.includes('client is closed; not sent'));
  // The same client's recalls to a shard that answers are waited for, not given up.
  const fine = await connect({ connection: ctx.nc, agent: 'agent-c2', direct: true });
  const answered = Promise.all(TOPICS.map((query) => fine.recall({ query, domain: 'email' })));
  await fine.close({ timeoutMs: 5_000 });
  assert.ok((await answered).every((r) => r.facts.length > 0));
});

sdk('no leader: the batch is retried (NOT_LEADER) until the shard starts; a short deadline still ends each call', async (ctx) => {
  const shortLived = await connect({ connection: ctx.nc, agent: 'agent-d', direct: true, deadlineMs: 600 });
  const started = Date.now();
  const failed = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => shortLived.recall({ query: `late query ${i}`, domain: 'late' })));
  const took = Date.now() - started;
  for (const r of failed) {
    assert.is(r.status, 'rejected');
    const e = (r as PromiseRejectedResult).reason as ShardmindError;
    assert.ok(e.retryable && (e.code === ErrorCode.NOT_LEADER || e.code === ErrorCode.TIMEOUT), `${e.code}: ${e.message}`);
  }
  assert.ok(took < 3_000, `each call ended near its 600 ms deadline (${took} ms)`);

  const retried: string[] = [];
  const patient = await connect({ connection: ctx.nc, agent: 'agent-p', direct: true, deadlineMs: 60_000, onRetry: (r) => retried.push(`${r.subject} ${r.code}`) });
  const calls = Promise.all(Array.from({ length: 6 }, (_, i) => patient.recall({ query: `late query ${i}`, domain: 'late' })));
  // The guard answers NOT_LEADER once it has listened a lease without hearing a leader; wait for the retries.
  for (const deadline = Date.now() + 10_000; !retried.some((r) => r === 'sm.shard.late.recall_batch NOT_LEADER') && Date.now() < deadline; ) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.ok(retried.includes('sm.shard.late.recall_batch NOT_LEADER'), JSON.stringify(retried.slice(0, 5)));
  ctx.late = await startHosts({ config: config(ctx.nats.url), nodes: ['mini-2'] });
  const answers = await calls;
  assert.is(answers.length, 6);
  assert.ok(answers.every((r) => r.domains[0] === 'late' && r.facts.length === 0));
});

sdk.run();

interface OldCtx {
  nats: NatsServerProcess;
  nc: NatsConnection;
  sub?: Subscription;
  seen: string[];
}

/**
 * A stand-in for a host from before `recall_batch`, on a nats-server of its own: `recall` answers an empty table,
 * `recall_batch` the "unknown op" a host of then answered, or (`batchMode: 'retryable'`) a batch whose first item
 * is refused with a retryable TIMEOUT.
 */
const old = suite<OldCtx & { batchMode: 'unknown' | 'retryable' }>('the SDK and a host without recall_batch');

old.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  ctx.nc = await natsConnect({ servers: ctx.nats.url });
  ctx.seen = [];
  ctx.batchMode = 'unknown';
  const table = { v: 1, domains: ['email'], rows: [], seqs: { email: 7 } };
  ctx.sub = ctx.nc.subscribe('sm.shard.email.*', {
    callback: (_, m: Msg) => {
      const op = m.subject.slice('sm.shard.email.'.length);
      ctx.seen.push(op);
      if (op === 'recall') return void m.respond(encodePayload(table, 'msgpack'));
      if (ctx.batchMode === 'unknown') {
        const e = new ShardmindError(ErrorCode.BAD_REQUEST, 'unknown op "recall_batch": a shard serves remember, remember_batch, recall, forget, retract, history, get, entity, lookup');
        return void m.respond(encodePayload(errorReply(e), 'msgpack'));
      }
      const { recalls } = decodePayload(m.data, 'msgpack') as { recalls: unknown[] };
      const first = errorReply(new ShardmindError(ErrorCode.TIMEOUT, 'sequence 99 not applied within 300 ms (applied: 7)'));
      m.respond(encodePayload({ v: 1, results: recalls.map((_, i) => (i === 0 ? first : table)) }, 'msgpack'));
    },
  });
  await ctx.nc.flush();
});

old.after(async (ctx) => {
  ctx.sub?.unsubscribe();
  await ctx.nc?.close();
  await ctx.nats?.destroy();
});

old('"unknown op" turns batching off for that shard: each call is sent alone, and the op is not tried again soon', async (ctx) => {
  const client = await connect({ servers: ctx.nats.url, agent: 'agent-o', direct: true });
  try {
    ctx.seen.length = 0;
    const first = await Promise.all([1, 2, 3].map((i) => client.recall({ query: `q${i}`, domain: 'email' })));
    assert.ok(first.every((r) => r.facts.length === 0 && r.seqs['email'] === 7));
    assert.equal(ctx.seen, ['recall_batch', 'recall', 'recall', 'recall']);
    ctx.seen.length = 0;
    await Promise.all([4, 5].map((i) => client.recall({ query: `q${i}`, domain: 'email' })));
    assert.equal(ctx.seen, ['recall', 'recall'], 'no second try of the batch op');
  } finally {
    await client.close();
  }
});

old('an item refused with a retryable error is sent again alone; the others are answered from the batch', async (ctx) => {
  ctx.batchMode = 'retryable';
  const client = await connect({ servers: ctx.nats.url, agent: 'agent-r', direct: true });
  try {
    ctx.seen.length = 0;
    const out = await Promise.all([1, 2, 3].map((i) => client.recall({ query: `q${i}`, domain: 'email' })));
    assert.is(out.length, 3);
    assert.equal(ctx.seen, ['recall_batch', 'recall']);
  } finally {
    await client.close();
  }
});

old.run();
