/**
 * The write pipeline opens the store's transaction for a lone append while it awaits its ack
 * (`ShardStore.applyBatchWhenReady`, decisions §87): the write is applied in it once acknowledged; an append that
 * fails applies nothing, and the store takes later batches.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { startNatsServer, waitForJetStream, type NatsServerProcess } from '../../cli/index.ts';
import { encodeEntry, ensureLogStream, WritePipeline, type PipelineBreak } from '../../actors/index.ts';
import { logSubject, ShardmindError } from '../../protocol/index.ts';
import { openShardStore, type AssertEntry, type ShardStore } from '../../shards/index.ts';

interface Ctx {
  server?: NatsServerProcess;
  nc?: NatsConnection;
  dir?: string;
  stores: ShardStore[];
  n: number;
}

const ahead = suite<Ctx>('write pipeline: the transaction opened during the ack', { stores: [], n: 0 });

ahead.before(async (ctx) => {
  ctx.server = await startNatsServer();
  ctx.nc = await connect({ servers: ctx.server.url });
  await waitForJetStream(ctx.nc);
  ctx.dir = mkdtempSync(join(tmpdir(), 'sm-ahead-'));
});

ahead.after(async (ctx) => {
  for (const s of ctx.stores) await s.close();
  await ctx.nc?.close();
  await ctx.server?.destroy();
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

/** A fresh domain with a synced store (durability none has no write thread, so nothing is opened ahead). */
async function fresh(ctx: Ctx): Promise<{ domain: string; store: ShardStore; calls: { ahead: number; plain: number } }> {
  const domain = `a${++ctx.n}`;
  await ensureLogStream(await ctx.nc!.jetstreamManager({ checkAPI: false }), domain, 1);
  const real = openShardStore({ path: join(ctx.dir!, domain), domain, durability: 'meta' });
  ctx.stores.push(real);
  const calls = { ahead: 0, plain: 0 };
  // The real store, with its two ways in counted.
  const store = Object.create(real) as ShardStore;
  store.applyBatch = (batch, options) => (calls.plain++, real.applyBatch(batch, options));
  store.applyBatchWhenReady = (ready) => (calls.ahead++, real.applyBatchWhenReady!(ready));
  return { domain, store, calls };
}

function assertEntry(opId: string, text: string): AssertEntry {
  return { v: 1, op: 'assert', opId, recordedAt: 1_764_000_000_000, source: { agent: 'test' }, fact: { text } };
}

function open(ctx: Ctx, domain: string, store: ShardStore, lastSeq = 0) {
  const breaks: PipelineBreak[] = [];
  const p = new WritePipeline({ nc: ctx.nc!, subject: logSubject(domain), store, lastSeq, onApplied: () => undefined });
  p.onBroken((why) => breaks.push(why));
  return { p, breaks };
}

ahead('sequential writes are each applied in the transaction opened while their append awaited its ack', async (ctx) => {
  const { domain, store, calls } = await fresh(ctx);
  const { p } = open(ctx, domain, store);
  for (let i = 0; i < 5; i++) {
    const r = await p.submit(assertEntry(`w${i}`, `fact ${i}`));
    assert.is(r.seq, i + 1);
    assert.is(r.status, 'created');
  }
  assert.equal(calls, { ahead: 5, plain: 0 });
  assert.is(store.appliedSeq, 5);
});

ahead('writes that arrive while one is in flight go the ordinary way, in order, each applied once', async (ctx) => {
  const { domain, store, calls } = await fresh(ctx);
  const { p } = open(ctx, domain, store);
  // The first goes out alone; the rest are submitted once it is on its way, so they go out while it is in flight.
  const first = p.submit(assertEntry('c0', 'concurrent 0'));
  await new Promise((resolve) => setImmediate(resolve));
  const rest = Array.from({ length: 39 }, (_, i) => p.submit(assertEntry(`c${i + 1}`, `concurrent ${i + 1}`)));
  const results = await Promise.all([first, ...rest]);
  assert.is(new Set(results.map((r) => r.opId)).size, 40);
  assert.ok(calls.ahead >= 1 && calls.plain >= 1, JSON.stringify(calls));
  assert.is(store.appliedSeq, Math.max(...results.map((r) => r.seq)));
  for (let i = 0; i < 40; i++) assert.is(store.resultOf(`c${i}`)?.status, 'created');
});

ahead('a fenced append applies nothing in the transaction opened for it, and the store takes the next batch', async (ctx) => {
  const { domain, store, calls } = await fresh(ctx);
  const { p, breaks } = open(ctx, domain, store);
  await p.submit(assertEntry('before', 'first'));
  await ctx.nc!.jetstream().publish(logSubject(domain), encodeEntry(assertEntry('rival', 'from elsewhere')), { expect: { lastSequence: 1 } });
  await p.submit(assertEntry('fenced', 'behind the rival')).then(
    () => assert.unreachable('a fenced append is not acknowledged'),
    (err: ShardmindError) => assert.is(err.code, 'NOT_LEADER'),
  );
  await p.settled();
  assert.is(breaks[0]?.kind, 'fenced');
  assert.is(calls.ahead, 2);
  assert.is(store.appliedSeq, 1);
  assert.is(store.resultOf('fenced'), undefined);
  // The rival's entry, as a catch-up would apply it: the store is not held by the aborted transaction.
  const [r] = await store.applyBatch([{ seq: 2, entry: assertEntry('rival', 'from elsewhere') }]);
  assert.is(r?.status, 'created');
});

ahead.run();
