/**
 * `remember_batch` and the SDK's batching of concurrent remembers, against a real host on a real nats-server:
 * concurrent calls travel in few requests and land in few log messages, each with its own result; a lone call is a
 * plain `remember`; through the router each item goes where its remember would (named domain, task, classifier);
 * one bad fact fails only itself and changes nothing; a retried batch is applied once; batches
 * stay under the payload limit; and the batcher falls back to one request per call for a host without the op.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect as natsConnect, type NatsConnection, type Subscription } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { connect, ErrorCode, ShardmindError, type ShardmindClient } from '../../client/index.ts';
import { RememberBatcher } from '../../client/remember-batcher.ts';
import { decodePayload, encodePayload, logStream, shardSubject, type RememberBatchReply, type RememberReply } from '../../protocol/index.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';
import { NODE, oneMiniConfig } from './one-mini.ts';

interface Ctx {
  nats: NatsServerProcess;
  hosts: HostCluster;
  nc: NatsConnection;
  client: ShardmindClient;
}

const batch = suite<Ctx>('remember_batch against a real host');

batch.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  try {
    ctx.hosts = await startHosts({ config: oneMiniConfig(ctx.nats.url) });
    ctx.nc = await natsConnect({ servers: ctx.nats.url });
    ctx.client = await connect({ servers: ctx.nats.url, agent: 'agent-a', node: NODE, direct: true });
  } catch (err) {
    await ctx.hosts?.stop();
    await ctx.nats.destroy();
    throw err;
  }
});

batch.after(async (ctx) => {
  await ctx.client?.close();
  await ctx.nc?.close();
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

/** Counts the requests on a shard's remember subjects (a plain subscriber sees every request the leader gets). */
async function spy(nc: NatsConnection, domain: string): Promise<{ counts: { remember: number; batch: number }; stop(): void }> {
  const counts = { remember: 0, batch: 0 };
  const subs: Subscription[] = [
    nc.subscribe(shardSubject(domain, 'remember'), { callback: () => void counts.remember++ }),
    nc.subscribe(shardSubject(domain, 'remember_batch'), { callback: () => void counts.batch++ }),
  ];
  await nc.flush();
  return { counts, stop: () => subs.forEach((s) => s.unsubscribe()) };
}

async function lastSeq(nc: NatsConnection, domain: string): Promise<number> {
  const jsm = await nc.jetstreamManager({ checkAPI: false });
  return (await jsm.streams.info(logStream(domain))).state.last_seq;
}

async function rawBatch(nc: NatsConnection, domain: string, body: object): Promise<RememberBatchReply> {
  const msg = await nc.request(shardSubject(domain, 'remember_batch'), encodePayload(body, 'msgpack'), { timeout: 5_000 });
  return decodePayload(msg.data, 'msgpack') as RememberBatchReply;
}

batch('concurrent remembers go in few requests and few log messages, each with its own result', async (ctx) => {
  const s = await spy(ctx.nc, 'email');
  const before = await lastSeq(ctx.nc, 'email');
  const results = await Promise.all(
    Array.from({ length: 60 }, (_, i) => ctx.client.remember({ text: `Batched fact number ${i} about the inbox`, subject: `sender${i}`, predicate: 'writes_about', object: `topic${i}` }, { domain: 'email' })),
  );
  await ctx.nc.flush();
  s.stop();
  assert.is(new Set(results.map((r) => r.factId)).size, 60, 'every call has its own fact');
  assert.ok(results.every((r) => r.status === 'created' && r.domain === 'email' && !r.duplicate));
  assert.is(new Set(results.map((r) => r.opId)).size, 60);
  const requests = s.counts.remember + s.counts.batch;
  assert.ok(s.counts.batch >= 1, `batched requests: ${JSON.stringify(s.counts)}`);
  assert.ok(requests <= 10, `60 calls took ${requests} requests`);
  const messages = (await lastSeq(ctx.nc, 'email')) - before;
  assert.ok(messages <= requests, `60 writes took ${messages} log messages for ${requests} requests`);
  // Read-your-writes still holds: the highest seq the client saw gates its next read.
  const { facts } = await ctx.client.recall({ query: 'batched fact number 59', domain: 'email' });
  assert.ok(facts.some((f) => f.id === results[59]!.factId));
});

batch('rememberMany of 600 facts: at most 256 per request, every fact answered in order', async (ctx) => {
  const s = await spy(ctx.nc, 'files');
  const facts = Array.from({ length: 600 }, (_, i) => ({ text: `Imported file note ${i}` }));
  const out = await ctx.client.rememberMany(facts, { domain: 'files' });
  await ctx.nc.flush();
  s.stop();
  assert.is(out.length, 600);
  assert.ok(out.every((r) => !(r instanceof ShardmindError) && r.status === 'created'));
  const ids = out.map((r) => (r as { factId: string }).factId);
  assert.is(new Set(ids).size, 600);
  const seqs = out.map((r) => (r as { seq: number }).seq);
  assert.ok(seqs.every((q, i) => i === 0 || q >= seqs[i - 1]!), 'applied in the order given');
  assert.equal(s.counts, { remember: 0, batch: 3 }, '256 + 256 + 88');
});

batch('a lone remember is a plain remember request', async (ctx) => {
  const s = await spy(ctx.nc, 'email');
  await ctx.client.remember({ text: 'A single fact, alone' }, { domain: 'email' });
  await ctx.nc.flush();
  s.stop();
  assert.equal(s.counts, { remember: 1, batch: 0 });
});

batch('one bad fact fails only itself, with a code and the field, and changes nothing', async (ctx) => {
  const before = await lastSeq(ctx.nc, 'email');
  const out = await ctx.client.rememberMany(
    [{ text: 'Good fact one' }, { text: 'bad \u0001 control character' }, { text: 'Good fact two' }],
    { domain: 'email' },
  );
  assert.ok(!(out[0] instanceof ShardmindError) && out[0]!.status === 'created');
  assert.instance(out[1], ShardmindError);
  const e = out[1] as ShardmindError;
  assert.is(e.code, ErrorCode.BAD_REQUEST);
  assert.ok(e.message.includes('fact.text'), e.message);
  assert.ok(!(out[2] instanceof ShardmindError) && out[2]!.status === 'created');
  assert.is((await lastSeq(ctx.nc, 'email')) - before, 1, 'the two good facts in one log message, the bad one nowhere');
});

batch('a retried batch is applied once; a repeated opId inside a batch is a duplicate', async (ctx) => {
  const body = {
    v: 1,
    agent: 'raw-agent',
    domain: 'files',
    items: [
      { opId: 'retry-1', fact: { text: 'The report lives in the shared drive' } },
      { opId: 'retry-2', task: 'task-9', fact: { text: 'Invoices are filed by month', subject: 'invoices', predicate: 'filed_by', object: 'month' } },
      { opId: 'retry-1', fact: { text: 'The report lives in the shared drive' } },
      { opId: 'retry-4', fact: { text: 42 } },
      { fact: { text: 'No opId, so a retry could apply it twice' } },
    ],
  };
  const first = await rawBatch(ctx.nc, 'files', body);
  assert.is(first.results.length, 5);
  const [a, b, again, bad, noOpId] = first.results as (Omit<RememberReply, 'v'> & { error?: { code: string; message: string } })[];
  assert.is(noOpId!.error?.code, ErrorCode.BAD_REQUEST);
  assert.ok(noOpId!.error!.message.includes('items[4].opId'), noOpId!.error!.message);
  assert.is(a!.domain, 'files');
  assert.is(a!.status, 'created');
  assert.is(b!.status, 'created');
  assert.is(again!.factId, a!.factId);
  assert.is(again!.duplicate, true);
  assert.is(bad!.error?.code, ErrorCode.BAD_REQUEST);
  assert.ok(bad!.error!.message.includes('items[3].fact.text'), bad!.error!.message);
  const seq = await lastSeq(ctx.nc, 'files');
  const retried = await rawBatch(ctx.nc, 'files', body);
  assert.is(await lastSeq(ctx.nc, 'files'), seq, 'the retry appended nothing');
  const [ra, rb] = retried.results as Omit<RememberReply, 'v'>[];
  assert.is(ra!.factId, a!.factId);
  assert.is(ra!.duplicate, true);
  assert.is(rb!.factId, b!.factId);
  assert.is(rb!.duplicate, true);
});

batch('large facts are split into requests under the payload limit', async (ctx) => {
  const s = await spy(ctx.nc, 'calendar');
  const big = (i: number): string => `Meeting notes ${i}: ${'agenda item and discussion. '.repeat(540)}`; // ~15 KB each
  const results = await Promise.all(Array.from({ length: 8 }, (_, i) => ctx.client.remember({ text: big(i) }, { domain: 'calendar' })));
  await ctx.nc.flush();
  s.stop();
  assert.is(new Set(results.map((r) => r.factId)).size, 8);
  assert.ok(s.counts.remember + s.counts.batch >= 3, `8 facts of ~15 KB in ${JSON.stringify(s.counts)}`);
});

batch('through the router: concurrent remembers go as remember_batch, each item where a remember of it would go', async (ctx) => {
  const routed = await connect({ connection: ctx.nc, agent: 'agent-r', node: NODE });
  const { task } = await routed.task.begin('answer the email thread', { domain: 'email' });
  const counts = { remember: 0, batch: 0 };
  const subs = [
    ctx.nc.subscribe('sm.mem.remember', { callback: () => void counts.remember++ }),
    ctx.nc.subscribe('sm.mem.remember_batch', { callback: () => void counts.batch++ }),
  ];
  await ctx.nc.flush();
  const named = Array.from({ length: 4 }, (_, i) => routed.remember({ text: `Routed fact ${i} for the files shard` }, { domain: 'files' }));
  const inTask = Array.from({ length: 4 }, (_, i) => routed.remember({ text: `Task fact ${i} learned while answering` }, { task }));
  const classified = Array.from({ length: 4 }, (_, i) => routed.remember({ text: `calendar things: standup number ${i} moved` }));
  const [n, t, c] = await Promise.all([Promise.all(named), Promise.all(inTask), Promise.all(classified)]);
  await ctx.nc.flush();
  subs.forEach((sub) => sub.unsubscribe());
  assert.ok(n.every((r) => r.domain === 'files' && r.status === 'created'), JSON.stringify(n));
  assert.ok(t.every((r) => r.domain === 'email' && r.status === 'created'), JSON.stringify(t));
  assert.ok(c.every((r) => r.domain === 'calendar' && r.status === 'created'), JSON.stringify(c));
  assert.ok(counts.batch >= 1 && counts.batch + counts.remember < 12, JSON.stringify(counts));
  // A recall in the task finds what was learned in it.
  const { facts } = await routed.recall({ query: 'task fact learned while answering', task, limit: 10 });
  assert.is(facts.filter((f) => t.some((r) => r.factId === f.id)).length, 4);
  await routed.task.end(task);
});

batch('batchRemember: false sends one request per call', async (ctx) => {
  const plain = await connect({ connection: ctx.nc, agent: 'agent-b', node: NODE, direct: true, batchRemember: false });
  const s = await spy(ctx.nc, 'files');
  await Promise.all(Array.from({ length: 5 }, (_, i) => plain.remember({ text: `Unbatched fact ${i}` }, { domain: 'files' })));
  await ctx.nc.flush();
  s.stop();
  assert.equal(s.counts, { remember: 5, batch: 0 });
});

batch.run();

const fallback = suite('the batcher and a host without remember_batch');

fallback('an unknown-op answer turns batching off and each call is sent alone', async () => {
  const sent: string[] = [];
  let seq = 0;
  const request = async <T>(subject: string, body: object): Promise<T> => {
    sent.push(subject);
    if (subject.endsWith('remember_batch')) throw new ShardmindError(ErrorCode.BAD_REQUEST, 'unknown op "remember_batch": a shard serves remember, recall');
    const { opId, domain } = body as { opId: string; domain: string };
    return { v: 1, domain, seq: ++seq, factId: `${domain}:${seq}:0`, status: 'created', opId } as T;
  };
  const batcher = new RememberBatcher(request, { agent: 'a', node: undefined });
  const email = { key: 'shard email', single: 'sm.shard.email.remember', batch: 'sm.shard.email.remember_batch', domain: 'email' };
  const replies = await Promise.all([1, 2, 3].map((i) => batcher.remember(email, { opId: `op-${i}`, fact: { text: `fact ${i}` } })));
  assert.equal(sent, ['sm.shard.email.remember_batch', 'sm.shard.email.remember', 'sm.shard.email.remember', 'sm.shard.email.remember']);
  assert.equal(replies.map((r) => r.seq).sort(), [1, 2, 3]);
  assert.ok(replies.every((r) => r.domain === 'email'));
  sent.length = 0;
  await Promise.all([4, 5].map((i) => batcher.remember(email, { opId: `op-${i}`, fact: { text: `fact ${i}` } })));
  assert.equal(sent, ['sm.shard.email.remember', 'sm.shard.email.remember'], 'no second try of the batch op');
});

fallback('a batch refused as too large is sent in halves, and later batches stay under the limit it named', async () => {
  const sizes: number[] = [];
  let seq = 0;
  const request = async <T>(subject: string, body: object): Promise<T> => {
    const items = (body as { items?: { opId: string }[] }).items;
    const n = items?.length ?? 1;
    sizes.push(n);
    if (n > 4) throw new ShardmindError(ErrorCode.TOO_LARGE, `payload is ${n * 1000} bytes; the limit is 4096 bytes`);
    const reply = (opId: string) => ({ domain: 'email', seq: ++seq, factId: `email:${seq}:0`, status: 'created', opId });
    return (items ? { v: 1, results: items.map((i) => reply(i.opId)) } : { v: 1, ...reply((body as { opId: string }).opId) }) as T;
  };
  const batcher = new RememberBatcher(request, { agent: 'a', node: undefined });
  const email = { key: 'shard email', single: 'sm.shard.email.remember', batch: 'sm.shard.email.remember_batch', domain: 'email' };
  const text = 'x'.repeat(1000); // ~1.1 KB estimated each
  const first = await Promise.all(Array.from({ length: 10 }, (_, i) => batcher.remember(email, { opId: `a-${i}`, fact: { text } })));
  assert.is(new Set(first.map((r) => r.seq)).size, 10, 'every call answered once');
  assert.is(sizes[0], 10);
  assert.ok(sizes.slice(1).every((n) => n <= 5), JSON.stringify(sizes));
  sizes.length = 0;
  await Promise.all(Array.from({ length: 10 }, (_, i) => batcher.remember(email, { opId: `b-${i}`, fact: { text } })));
  assert.ok(sizes.every((n) => n <= 4), `after the refusal batches fit 4096 bytes: ${JSON.stringify(sizes)}`);
});

fallback('a malformed batch reply fails its callers with INTERNAL, never leaves one waiting or crashes', async () => {
  const replies: unknown[] = [{ v: 1, results: [null, { error: 'not an object' }] }, { v: 1 }, { v: 1, results: [{ domain: 'email', seq: 1, factId: 'email:1:0', status: 'created' }] }];
  let unhandled = 0;
  const onUnhandled = (): void => void unhandled++;
  process.on('unhandledRejection', onUnhandled);
  try {
    for (const reply of replies) {
      const batcher = new RememberBatcher(async <T>() => reply as T, { agent: 'a', node: undefined });
      const email = { key: 'shard email', single: 'sm.shard.email.remember', batch: 'sm.shard.email.remember_batch', domain: 'email' };
      const settled = await Promise.allSettled([1, 2].map((i) => batcher.remember(email, { opId: `op-${i}`, fact: { text: `fact ${i}` } })));
      for (const [i, r] of settled.entries()) {
        if (reply === replies[2] && i === 0) assert.is(r.status, 'fulfilled');
        else {
          assert.is(r.status, 'rejected', JSON.stringify(reply));
          assert.is(((r as PromiseRejectedResult).reason as ShardmindError).code, ErrorCode.INTERNAL);
        }
      }
    }
    await new Promise((r) => setImmediate(r));
    assert.is(unhandled, 0);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

fallback.run();
