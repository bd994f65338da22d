/**
 * `recordedAt` never goes backwards along a shard's log: a leader whose clock is behind the last entry's stamp (a
 * failover to a host whose clock is behind, an NTP step back) writes at that stamp instead, and a leader on a store
 * it reopened starts from its newest fact's. `asOf` recall searches facts by record time assuming it grows with the
 * sequence (review session 12, finding 1; decisions §71). Real nats-server and LMDB.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { startNatsServer, waitForJetStream, type NatsServerProcess } from '../../cli/index.ts';
import { ensureLogStream, WritePipeline } from '../../actors/index.ts';
import { logSubject } from '../../protocol/index.ts';
import { CLOCK_SKEW_MS, openShardStore, type AssertEntry, type ShardStore } from '../../shards/index.ts';

interface Ctx {
  server?: NatsServerProcess;
  nc?: NatsConnection;
  dir?: string;
}

const floor = suite<Ctx>('recordedAt floor', {});

floor.before(async (ctx) => {
  ctx.server = await startNatsServer();
  ctx.nc = await connect({ servers: ctx.server.url });
  await waitForJetStream(ctx.nc);
  ctx.dir = mkdtempSync(join(tmpdir(), 'sm-recorded-floor-'));
});

floor.after(async (ctx) => {
  await ctx.nc?.close();
  await ctx.server?.destroy();
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

const T0 = Date.UTC(2026, 10, 24);

function remember(opId: string, subject: string, object: string, recordedAt: number): AssertEntry {
  return { v: 1, op: 'assert', opId, recordedAt, source: { agent: 'test' }, fact: { text: `${subject} likes ${object}`, subject, predicate: 'likes', object } };
}

function pipeline(ctx: Ctx, domain: string, store: ShardStore, lastSeq: number): WritePipeline {
  return new WritePipeline({ nc: ctx.nc!, subject: logSubject(domain), store, lastSeq, group: false, onApplied: () => undefined });
}

floor('finding 1: a leader behind the log stamps at the last recordedAt, and asOf finds a fact recorded by then', async (ctx) => {
  const domain = 'floor';
  await ensureLogStream(await ctx.nc!.jetstreamManager({ checkAPI: false }), domain, 1);
  const path = join(ctx.dir!, domain);
  let store = await openShardStore({ path, domain, durability: 'none' });
  try {
    let p = pipeline(ctx, domain, store, 0);
    await p.submit(remember('1', 'alice', 'tea', T0));
    p.close();
    await p.settled();
    // A new leader on the reopened store, its clock a second behind: it starts from the newest fact's stamp.
    await store.close();
    store = await openShardStore({ path, domain, durability: 'none' });
    p = pipeline(ctx, domain, store, 1);
    const bob = await p.submit(remember('2', 'bob', 'coffee', T0 - 1000));
    for (const [i, who] of ['carol', 'dan', 'erin'].entries()) await p.submit(remember(`${3 + i}`, who, 'juice', T0 + 5000 + i * 1000));
    // And its clock steps back again after writes of its own.
    const late = await p.submit(remember('6', 'fay', 'milk', T0 + 2000));
    p.close();
    await p.settled();
    assert.is(store.getFact(bob.factId!)?.recordedAt, T0, "bob's fact is stamped at the log's last recordedAt, not a second before it");
    assert.is(store.getFact(late.factId!)?.recordedAt, T0 + 7000);
    // The review's recall: asOf between the stamps finds what was recorded by then.
    assert.equal(store.recall({ subject: 'bob', now: T0 + 10_000, asOf: T0 }).facts.map((f) => f.object), ['coffee']);
    assert.equal(store.recall({ subject: 'bob', now: T0 + 10_000, asOf: T0 - 500 }).facts.map((f) => f.object), []);
    const recorded = [1, 2, 3, 4, 5, 6].map((seq) => store.getFact(`${domain}:${seq.toString(36).padStart(10, '0')}:0`)!.recordedAt);
    assert.equal(recorded, [...recorded].sort((a, b) => a - b), 'recordedAt grows with the sequence');
  } finally {
    await store.close();
  }
});

floor('a floor more than CLOCK_SKEW_MS ahead of the clock is not kept: record time steps back once rather than freeze', async (ctx) => {
  const domain = 'floor-ahead';
  await ensureLogStream(await ctx.nc!.jetstreamManager({ checkAPI: false }), domain, 1);
  const store = await openShardStore({ path: join(ctx.dir!, domain), domain, durability: 'none' });
  try {
    const p = pipeline(ctx, domain, store, 0);
    // A leader whose clock was an hour ahead wrote this one.
    await p.submit(remember('a1', 'alice', 'tea', T0 + 3_600_000));
    const near = await p.submit(remember('a2', 'bob', 'tea', T0 + 3_600_000 - CLOCK_SKEW_MS));
    const far = await p.submit(remember('a3', 'carol', 'tea', T0));
    const next = await p.submit(remember('a4', 'dan', 'tea', T0 + 1000));
    p.close();
    await p.settled();
    assert.is(store.getFact(near.factId!)?.recordedAt, T0 + 3_600_000, 'within the bound: held at the floor');
    assert.is(store.getFact(far.factId!)?.recordedAt, T0, 'an hour behind: the clock, not a frozen floor');
    assert.is(store.getFact(next.factId!)?.recordedAt, T0 + 1000, 'and it grows from there');
  } finally {
    await store.close();
  }
});

floor.run();
