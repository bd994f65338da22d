/**
 * The leader's write pipeline against a real nats-server and a real LMDB store: many appends in flight stay in
 * order and apply once; concurrent writes are grouped into few log messages that a follower replays to the same
 * content; a rival's append fences it; a JetStream-level duplicate, an append no stream takes (503) and an append
 * never acknowledged (timeout) ask for a resync instead.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { startNatsServer, waitForJetStream, type NatsServerProcess } from '../../cli/index.ts';
import { decodeEntry, encodeEntry, ensureLogStream, entryHash, MAX_GROUP_BYTES, PREV_HEADER, WritePipeline, type PipelineBreak } from '../../actors/index.ts';
import { logSubject, ShardmindError } from '../../protocol/index.ts';
import { openShardStore, type AssertEntry, type ShardStore } from '../../shards/index.ts';

interface Ctx {
  server?: NatsServerProcess;
  nc?: NatsConnection;
  dir?: string;
  stores: ShardStore[];
  n: number;
}

const pipeline = suite<Ctx>('write pipeline', { stores: [], n: 0 });

pipeline.before(async (ctx) => {
  ctx.server = await startNatsServer();
  ctx.nc = await connect({ servers: ctx.server.url });
  await waitForJetStream(ctx.nc);
  ctx.dir = mkdtempSync(join(tmpdir(), 'sm-pipeline-'));
});

pipeline.after(async (ctx) => {
  for (const s of ctx.stores) await s.close();
  await ctx.nc?.close();
  await ctx.server?.destroy();
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

/** A fresh domain (stream + store) per test, so tests do not share a log. */
async function fresh(ctx: Ctx): Promise<{ domain: string; store: ShardStore }> {
  const domain = `p${++ctx.n}`;
  await ensureLogStream(await ctx.nc!.jetstreamManager({ checkAPI: false }), domain, 1);
  const store = await openShardStore({ path: join(ctx.dir!, domain), domain, durability: 'none' });
  ctx.stores.push(store);
  return { domain, store };
}

function assertEntry(opId: string, text: string): AssertEntry {
  return { v: 1, op: 'assert', opId, recordedAt: 1_764_000_000_000, source: { agent: 'test' }, fact: { text } };
}

function open(ctx: Ctx, domain: string, store: ShardStore, lastSeq = 0, group = true) {
  const breaks: PipelineBreak[] = [];
  let applied = 0;
  const p = new WritePipeline({
    nc: ctx.nc!,
    subject: logSubject(domain),
    store,
    lastSeq,
    group,
    onApplied: (seq) => (applied = seq),
  });
  p.onBroken((why) => breaks.push(why));
  return { p, breaks, applied: () => applied };
}

async function streamMessages(ctx: Ctx, domain: string): Promise<number> {
  const info = await (await ctx.nc!.jetstreamManager({ checkAPI: false })).streams.info(`SM_LOG_${domain.toUpperCase()}`);
  return info.state.messages;
}

/** Every message of the domain's log, in order, as a follower reads them. */
async function readLog(ctx: Ctx, domain: string): Promise<{ seq: number; data: Uint8Array; prev: string | undefined }[]> {
  const jsm = await ctx.nc!.jetstreamManager({ checkAPI: false });
  const n = await streamMessages(ctx, domain);
  const out: { seq: number; data: Uint8Array; prev: string | undefined }[] = [];
  for (let seq = 1; seq <= n; seq++) {
    const m = await jsm.streams.getMessage(`SM_LOG_${domain.toUpperCase()}`, { seq });
    out.push({ seq, data: m.data, prev: m.header.get(PREV_HEADER) || undefined });
  }
  return out;
}

pipeline('without grouping, 200 concurrent writes get contiguous sequences and each is applied once', async (ctx) => {
  const { domain, store } = await fresh(ctx);
  const { p, breaks, applied } = open(ctx, domain, store, 0, false);
  const results = await Promise.all(Array.from({ length: 200 }, (_, i) => p.submit(assertEntry(`op-${i}`, `fact number ${i}`))));
  assert.equal(results.map((r) => r.seq), Array.from({ length: 200 }, (_, i) => i + 1));
  assert.ok(results.every((r) => r.status === 'created'));
  assert.is(store.appliedSeq, 200);
  assert.is(applied(), 200);
  assert.equal(breaks, []);
  const again = await p.submit(assertEntry('op-7', 'fact number 7'));
  assert.is(again.seq, 8);
  assert.is(again.duplicate, true);
  p.close();
  await p.settled();
});

pipeline('concurrent writes are grouped into few log messages; a follower replaying them gets the same memory', async (ctx) => {
  const { domain, store } = await fresh(ctx);
  const { p, breaks, applied } = open(ctx, domain, store);
  const n = 300;
  const results = await Promise.all(Array.from({ length: n }, (_, i) => p.submit(assertEntry(`g-${i}`, `grouped fact ${i}`))));
  assert.equal(breaks, []);
  assert.ok(results.every((r) => r.status === 'created'), 'every write created its fact');
  assert.is(new Set(results.map((r) => r.factId)).size, n, 'each write has its own fact');
  const messages = await streamMessages(ctx, domain);
  assert.ok(messages < n / 4, `${n} writes went out as ${messages} log messages`);
  assert.is(store.appliedSeq, messages);
  assert.is(applied(), messages);
  // Each result names the log sequence that holds it (read-your-writes compares it with appliedSeq).
  const log = await readLog(ctx, domain);
  for (const [i, r] of results.entries()) {
    const message = decodeEntry(log[r.seq - 1]!.data);
    const opIds = message?.op === 'batch' ? message.entries.map((e) => e.opId) : [message?.opId];
    assert.ok(opIds.includes(`g-${i}`), `g-${i} is in the message at seq ${r.seq}`);
  }
  // A follower applies the same messages and ends with the same content.
  const follower = await openShardStore({ path: join(ctx.dir!, `${domain}-follower`), domain, durability: 'none' });
  ctx.stores.push(follower);
  const replayed = await follower.applyBatch(log.map((m) => ({ seq: m.seq, entry: decodeEntry(m.data)! })));
  assert.is(replayed.length, n);
  assert.is(follower.digest(), store.digest());
  assert.equal(follower.getFact(results[123]!.factId!)?.text, 'grouped fact 123');
  // A retry of a grouped write is answered from its first result.
  const again = await p.submit(assertEntry('g-42', 'grouped fact 42'));
  assert.is(again.duplicate, true);
  assert.is(again.factId, results[42]!.factId);
  p.close();
  await p.settled();
});

pipeline('write(): each callback is called once; the same opId in flight hears the first result as a duplicate; a throwing callback does not keep its commit-mates from theirs; the change feed comes after the replies', async (ctx) => {
  const { domain, store } = await fresh(ctx);
  const order: string[] = [];
  const p = new WritePipeline({
    nc: ctx.nc!,
    subject: logSubject(domain),
    store,
    lastSeq: 0,
    onApplied: () => undefined,
    onCommitted: (applied) => order.push(`feed ${applied.length}`),
  });
  const calls = new Map<string, { err: unknown; seq?: number; duplicate?: boolean }[]>();
  const done = (key: string) => (err: unknown, r: { seq: number; duplicate?: boolean } | undefined): void => {
    order.push(key);
    const list = calls.get(key) ?? [];
    list.push({ err, ...(r ? { seq: r.seq, ...(r.duplicate ? { duplicate: true } : {}) } : {}) });
    calls.set(key, list);
  };
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown): void => void uncaught.push(err);
  process.on('uncaughtException', onUncaught);
  try {
    p.write(assertEntry('w-0', 'callback fact 0'), (err, r) => {
      done('first')(err, r);
      throw new Error('a caller that throws');
    });
    p.write(assertEntry('w-0', 'callback fact 0'), done('same opId'));
    for (let i = 1; i < 20; i++) p.write(assertEntry(`w-${i}`, `callback fact ${i}`), done(`w-${i}`));
    const deadline = Date.now() + 10_000;
    while (!order.some((o) => o.startsWith('feed')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  } finally {
    process.off('uncaughtException', onUncaught);
  }
  assert.equal(calls.get('first'), [{ err: undefined, seq: calls.get('first')![0]!.seq }]);
  assert.equal(calls.get('same opId'), [{ err: undefined, seq: calls.get('first')![0]!.seq, duplicate: true }]);
  for (let i = 1; i < 20; i++) assert.is(calls.get(`w-${i}`)?.length, 1, `w-${i} heard once`);
  assert.ok(calls.get('w-19')![0]!.err === undefined, 'a write after the throwing one still got its result');
  assert.is((uncaught[0] as Error | undefined)?.message, 'a caller that throws', 'the throw surfaces, outside the pipeline');
  // Every reply of the commit went out before its change feed was published.
  const feedAt = order.findIndex((o) => o.startsWith('feed'));
  assert.ok(feedAt >= 21, `the change feed came after the replies: ${order.slice(0, 3).join(', ')}…`);
  // A known opId answers at once, from the store.
  let again: { seq: number; duplicate?: boolean } | undefined;
  p.write(assertEntry('w-3', 'callback fact 3'), (_err, r) => (again = r));
  assert.is(again?.duplicate, true);
  assert.is(again?.seq, calls.get('w-3')![0]!.seq);
  p.close();
  await p.settled();
});

pipeline('a group never outgrows one message: large writes split into several, each under the byte cap', async (ctx) => {
  const { domain, store } = await fresh(ctx);
  const { p, breaks } = open(ctx, domain, store);
  const big = (i: number): string => `large fact ${i} ${'x'.repeat(12_000)}`;
  const results = await Promise.all(Array.from({ length: 100 }, (_, i) => p.submit(assertEntry(`big-${i}`, big(i)))));
  assert.equal(breaks, []);
  assert.ok(results.every((r) => r.status === 'created'));
  const log = await readLog(ctx, domain);
  assert.ok(log.length >= 3, `~1.2 MB of writes went out as ${log.length} messages`);
  for (const m of log) assert.ok(m.data.length <= MAX_GROUP_BYTES + 1024, `a message of ${m.data.length} bytes`);
  assert.is(store.getFact(results[99]!.factId!)?.text, big(99));
  p.close();
  await p.settled();
});

pipeline('a lone writer is never held back: sequential writes each take the next sequence', async (ctx) => {
  const { domain, store } = await fresh(ctx);
  const { p } = open(ctx, domain, store);
  for (let i = 1; i <= 5; i++) {
    const r = await p.submit(assertEntry(`solo-${i}`, `alone ${i}`));
    assert.is(r.seq, i);
  }
  assert.is(await streamMessages(ctx, domain), 5);
  const log = await readLog(ctx, domain);
  assert.ok(log.every((m) => decodeEntry(m.data)?.op === 'assert'), 'a single write is a plain entry in the log');
});

pipeline('the same opId submitted twice at once is appended once', async (ctx) => {
  const { domain, store } = await fresh(ctx);
  const { p } = open(ctx, domain, store);
  const [a, b] = await Promise.all([p.submit(assertEntry('same', 'x')), p.submit(assertEntry('same', 'x'))]);
  assert.is(a.seq, b.seq);
  assert.is(b.duplicate, true);
  const info = await (await ctx.nc!.jetstreamManager({ checkAPI: false })).streams.info(`SM_LOG_${domain.toUpperCase()}`);
  assert.is(info.state.messages, 1);
});

pipeline('a rival append fences the pipeline: writes behind it get NOT_LEADER and it reports fenced', async (ctx) => {
  const { domain, store } = await fresh(ctx);
  const { p, breaks } = open(ctx, domain, store);
  await p.submit(assertEntry('before', 'first'));
  await ctx.nc!.jetstream().publish(logSubject(domain), encodeEntry(assertEntry('rival', 'from elsewhere')), { expect: { lastSequence: 1 } });
  const outcomes = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => p.submit(assertEntry(`behind-${i}`, `behind ${i}`))));
  for (const o of outcomes) {
    assert.is(o.status, 'rejected');
    assert.instance((o as PromiseRejectedResult).reason, ShardmindError);
    assert.is(((o as PromiseRejectedResult).reason as ShardmindError).code, 'NOT_LEADER');
  }
  await p.settled();
  assert.is(breaks[0]?.kind, 'fenced');
  assert.is(breaks.length, 1);
  await p.submit(assertEntry('c', 'c')).then(
    () => assert.unreachable('a fenced pipeline takes no writes'),
    (err: ShardmindError) => assert.is(err.code, 'NOT_LEADER'),
  );
});

pipeline('a JetStream duplicate inside the pipeline asks for a resync, not a fence', async (ctx) => {
  const { domain, store } = await fresh(ctx);
  // A previous leader appended "ghost" but this store never applied it; the new pipeline starts at the tail.
  // Ungrouped, so "ghost" goes out as its own message under its own Msg-Id, which JetStream has seen.
  await ctx.nc!.jetstream().publish(logSubject(domain), encodeEntry(assertEntry('ghost', 'left behind')), { msgID: 'ghost' });
  const { p, breaks } = open(ctx, domain, store, 1, false);
  const outcomes = await Promise.allSettled([p.submit(assertEntry('ghost', 'left behind')), p.submit(assertEntry('next', 'behind it'))]);
  assert.ok(outcomes.every((o) => o.status === 'rejected'));
  await p.settled();
  assert.is(breaks[0]?.kind, 'resync', JSON.stringify(breaks));
});

pipeline('an append no stream takes (503 no responders) asks for a resync', async (ctx) => {
  const { store } = await fresh(ctx);
  const breaks: PipelineBreak[] = [];
  const p = new WritePipeline({ nc: ctx.nc!, subject: 'sm.nolog.nowhere', store, lastSeq: 0, onApplied: () => undefined });
  p.onBroken((why) => breaks.push(why));
  const err = await p.submit(assertEntry('lost', 'no stream')).then(
    () => undefined,
    (e: ShardmindError) => e,
  );
  assert.instance(err, ShardmindError, 'nothing took the append');
  assert.is(err!.code, 'NOT_LEADER');
  await p.settled();
  assert.is(breaks[0]?.kind, 'resync', JSON.stringify(breaks));
  assert.match(breaks[0]!.detail, /503/);
});

pipeline('an append nobody acknowledges times out into a resync, and a late ack changes nothing', async (ctx) => {
  const { store } = await fresh(ctx);
  // Something listens on the subject (so no 503) but never answers in time.
  const held: { respond(data: Uint8Array): boolean }[] = [];
  const silent = ctx.nc!.subscribe('sm.nolog.silent', { callback: (_err, msg) => void held.push(msg) });
  const breaks: PipelineBreak[] = [];
  const p = new WritePipeline({ nc: ctx.nc!, subject: 'sm.nolog.silent', store, lastSeq: 0, publishTimeoutMs: 150, onApplied: () => undefined });
  p.onBroken((why) => breaks.push(why));
  const started = Date.now();
  const err = await p.submit(assertEntry('slow', 'never acked')).then(
    () => undefined,
    (e: ShardmindError) => e,
  );
  assert.instance(err, ShardmindError, 'nothing acknowledged the append');
  assert.is(err!.code, 'NOT_LEADER');
  assert.ok(Date.now() - started >= 140, 'waited for the publish timeout');
  await p.settled();
  assert.is(breaks[0]?.kind, 'resync');
  assert.match(breaks[0]!.detail, /no ack/);
  // The ack arriving after the timeout is ignored: nothing is applied.
  for (const m of held) m.respond(new TextEncoder().encode('{"stream":"X","seq":1}'));
  await ctx.nc!.flush();
  assert.is(store.appliedSeq, 0);
  silent.unsubscribe();
});

pipeline('each append names the hash of the message before it (Sm-Prev), lone and grouped; the tail hash is the last one\'s', async (ctx) => {
  const { domain, store } = await fresh(ctx);
  const tails: [number, string][] = [];
  const p = new WritePipeline({ nc: ctx.nc!, subject: logSubject(domain), store, lastSeq: 0, onApplied: (seq, hash) => void tails.push([seq, hash]) });
  for (let i = 0; i < 3; i++) await p.submit(assertEntry(`chain-${i}`, `lone ${i}`));
  await Promise.all(Array.from({ length: 40 }, (_, i) => p.submit(assertEntry(`chain-g-${i}`, `grouped ${i}`))));
  await p.submit(assertEntry('chain-last', 'lone again'));
  const log = await readLog(ctx, domain);
  assert.ok(log.length < 44, `the concurrent writes were grouped (${log.length} messages)`);
  assert.is(log[0]!.prev, undefined, 'the first append knows no predecessor');
  for (let k = 1; k < log.length; k++) assert.is(log[k]!.prev, entryHash(log[k - 1]!.data), `Sm-Prev of seq ${k + 1}`);
  const last = log[log.length - 1]!;
  assert.equal(tails[tails.length - 1], [last.seq, entryHash(last.data)]);
});

pipeline('a message that does not decode as it was encoded fails its write with INTERNAL and asks for a resync', async (ctx) => {
  const { domain, store } = await fresh(ctx);
  const { p, breaks } = open(ctx, domain, store);
  // A log message needs a numeric recordedAt to decode (as every follower decodes it): this one cannot round-trip.
  const bad = { ...assertEntry('odd', 'recorded when?'), recordedAt: 'yesterday' } as unknown as AssertEntry;
  const err = await p.submit(bad).then(
    () => undefined,
    (e: ShardmindError) => e,
  );
  assert.instance(err, ShardmindError);
  assert.is(err!.code, 'INTERNAL');
  await p.settled();
  assert.is(breaks[0]?.kind, 'resync', JSON.stringify(breaks));
  assert.is(store.appliedSeq, 0, 'the leader applied nothing it could not decode');
  await p.submit(assertEntry('after', 'behind the break')).then(
    () => assert.unreachable('a pipeline that asked for a resync takes no writes'),
    (e: ShardmindError) => assert.is(e.code, 'NOT_LEADER'),
  );
});

pipeline('a retry that arrives while its write commits hears the result only after the original, once the commit is durable', async (ctx) => {
  // Default durability: the commit is fsynced on lmdb-js's write thread, and the store already knows the op's result
  // (filled inside the transaction) while it waits. A retry in that window must follow the original, not be answered
  // from a result that is not durable yet (review-session10 finding 8).
  const domain = `p${++ctx.n}`;
  await ensureLogStream(await ctx.nc!.jetstreamManager({ checkAPI: false }), domain, 1);
  const store = await openShardStore({ path: join(ctx.dir!, domain), domain });
  ctx.stores.push(store);
  const { p, breaks } = open(ctx, domain, store);
  let windows = 0;
  for (let attempt = 0; attempt < 20 && windows < 3; attempt++) {
    const opId = `r-${attempt}`;
    const answers: string[] = [];
    let committedWhenOriginalAnswered = -1;
    p.write(assertEntry(opId, `retried fact ${attempt}`), (err) => {
      answers.push(err ? `original failed: ${err.message}` : 'original');
      committedWhenOriginalAnswered = store.appliedSeq;
    });
    // Each turn of the event loop, look for the window: the store has the result, the original has no answer yet.
    while (answers.length === 0) {
      if (store.resultOf(opId) !== undefined) {
        windows++;
        p.write(assertEntry(opId, `retried fact ${attempt}`), (err, r) => answers.push(err ? `retry failed: ${err.message}` : `retry${r?.duplicate ? ' (duplicate)' : ''}`));
        break;
      }
      await new Promise((r) => setImmediate(r));
    }
    await p.settled();
    if (answers.length === 1) continue; // the commit finished within one turn: no window this time
    assert.equal(answers, ['original', 'retry (duplicate)'], `attempt ${attempt}: the retry is answered after the original`);
    assert.ok(committedWhenOriginalAnswered > 0);
  }
  assert.ok(windows > 0, 'a retry arrived while a commit was in flight at least once');
  assert.equal(breaks, []);
  p.close();
  await p.settled();
});

pipeline.run();
