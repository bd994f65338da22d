/**
 * `ShardFailover` — one shard's failover duties — between two "nodes" on a real nats-server: a follower promotes
 * itself after the leader falls silent (never while it beats), a handoff marker naming it promotes it at once, and a
 * leader that sees a later epoch's heartbeat is deposed. Lease 300 ms / heartbeat 50 ms keep it quick.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, type NatsConnection } from 'nats';
import { startNatsServer, waitForJetStream, type NatsServerProcess } from '../../cli/index.ts';
import { EpochRegistry, ShardFailover, systemTimerClock } from '../../actors/index.ts';
import type { MarkerEntry } from '../../shards/index.ts';

interface Ctx {
  server: NatsServerProcess;
  nc: NatsConnection;
  epochs: EpochRegistry;
}
const t = suite<Ctx>('shard failover', {} as Ctx);

t.before(async (ctx) => {
  ctx.server = await startNatsServer();
  ctx.nc = await connect({ servers: ctx.server.url });
  await waitForJetStream(ctx.nc);
  ctx.epochs = await EpochRegistry.open(ctx.nc.jetstream(), { replicas: 1 });
});
t.after(async (ctx) => {
  await ctx.nc?.close();
  await ctx.server?.destroy();
});

async function until(cond: () => boolean, ms: number, what: string): Promise<number> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return Date.now() - start;
}

function node(
  ctx: Ctx,
  domain: string,
  name: string,
  rank = 0,
  confirmQuorum?: () => Promise<number>,
  more: { storeEpoch?: () => number; logTail?: () => Promise<number>; appendedThrough?: () => number } = {},
) {
  const events = {
    promoted: 0,
    /** When this node last promoted, and the last leader heartbeat it had received by then (its local clock). */
    promotedAt: 0,
    heardBeforePromotion: undefined as string | undefined,
    deposed: [] as string[],
    logs: [] as string[],
  };
  const f = new ShardFailover({
    nc: ctx.nc,
    epochs: ctx.epochs,
    domain,
    node: name,
    clock: systemTimerClock,
    leaseMs: 300,
    heartbeatMs: 50,
    rank,
    storeEpoch: more.storeEpoch ?? (() => 0),
    position: () => 7,
    promote: () => {
      events.promoted++;
      events.promotedAt = Date.now();
      events.heardBeforePromotion = f.status().lastHeartbeatAt;
    },
    deposed: (d) => void events.deposed.push(d),
    log: (l) => void events.logs.push(l),
    ...(confirmQuorum ? { confirmQuorum } : {}),
    ...(more.logTail ? { logTail: more.logTail } : {}),
    ...(more.appendedThrough ? { appendedThrough: more.appendedThrough } : {}),
  });
  return { f, events };
}

t('a follower never promotes while the leader beats, and promotes after it falls silent', async (ctx) => {
  const a = node(ctx, 'silence', 'a');
  const b = node(ctx, 'silence', 'b');
  try {
    const e1 = await a.f.takeEpoch();
    assert.is(e1, 1);
    a.f.startLeading(e1!);
    assert.ok(await a.f.waitForLease(1_000), 'the leader gets its lease from its first beat');
    b.f.startFollowing();
    await until(() => b.f.status().leaderNode === 'a', 1_000, 'b to hear a');
    // Three lease periods of beats: no promotion.
    const quiet = Date.now() + 900;
    await until(() => Date.now() > quiet || b.events.promoted > 0, 2_000, 'a quiet period');
    assert.is(b.events.promoted, 0);
    assert.is(b.f.status().epoch, 1);
    // The leader dies (its beats stop).
    a.f.close();
    await until(() => b.events.promoted === 1, 3_000, 'b to promote');
    // Measured from the last beat b received, not from a's close: a beat delayed on a busy machine can leave b's
    // last one more than a beat period before the close (CI once read 246 ms from the close).
    assert.ok(b.events.heardBeforePromotion, 'b had heard a before promoting');
    const silentFor = b.events.promotedAt - Date.parse(b.events.heardBeforePromotion!);
    assert.ok(silentFor >= 300 - 2, `promoted ${silentFor} ms after the last beat it heard, before the 300 ms lease ran out`);
    const e2 = await b.f.takeEpoch();
    assert.is(e2, 2, 'b leads in the epoch it claimed');
    assert.is((await ctx.epochs.holder('silence', 2))?.node, 'b');
    b.f.startLeading(e2!);
    assert.ok(await b.f.waitForLease(1_000));
    assert.is(b.f.status().leaderNode, 'b');
    assert.ok(b.f.status().leaseUntil);
  } finally {
    a.f.close();
    b.f.close();
  }
});

t('a node that claimed an epoch but could not lead in it may retry that epoch; others may not', async (ctx) => {
  const a = node(ctx, 'retry', 'a');
  const b = node(ctx, 'retry', 'b');
  try {
    assert.is(await a.f.takeEpoch(), 1);
    // Its epoch marker append failed (no stream leader yet): the machine resyncs and asks again.
    assert.is(await a.f.takeEpoch(), 1, 'the same epoch, not a loss to itself');
    assert.is(await b.f.takeEpoch(), undefined, 'b lost epoch 1 to a');
  } finally {
    a.f.close();
    b.f.close();
  }
});

t('a handoff marker naming this node promotes it at once; others only restart their countdown', async (ctx) => {
  const a = node(ctx, 'handoff', 'a');
  const b = node(ctx, 'handoff', 'b');
  const c = node(ctx, 'handoff', 'c', 1);
  try {
    a.f.startLeading((await a.f.takeEpoch())!);
    b.f.startFollowing();
    c.f.startFollowing();
    const marker: MarkerEntry = {
      v: 1,
      op: 'marker',
      kind: 'handoff',
      epoch: 1,
      node: 'a',
      to: 'b',
      opId: 'handoff-1',
      recordedAt: Date.now(),
      source: { agent: 'shardmind', node: 'a' },
    };
    a.f.stopLeading();
    b.f.onMarker(marker);
    c.f.onMarker(marker);
    const took = await until(() => b.events.promoted === 1, 1_000, 'b to promote');
    assert.ok(took < 250, `handoff promotion took ${took} ms: it must not wait for the lease`);
    assert.is(await b.f.takeEpoch(), 2);
    b.f.startLeading(2);
    await b.f.waitForLease(1_000);
    await until(() => c.f.status().leaderNode === 'b', 1_000, 'c to hear b');
    assert.is(c.events.promoted, 0);
  } finally {
    for (const n of [a, b, c]) n.f.close();
  }
});

t('an old hand-off met while replaying history does not promote; the live one at the tail does', async (ctx) => {
  let tail = 40;
  let storeEpoch = 1;
  const b = node(ctx, 'replay', 'b', 0, undefined, { storeEpoch: () => storeEpoch, logTail: async () => tail });
  const handoff = (epoch: number): MarkerEntry => ({
    v: 1,
    op: 'marker',
    kind: 'handoff',
    epoch,
    node: 'a',
    to: 'b',
    opId: `handoff-${epoch}`,
    recordedAt: Date.now(),
    source: { agent: 'shardmind', node: 'a' },
  });
  try {
    b.f.onMarker(handoff(1), 12); // seq 12 of a 40-entry log: history
    storeEpoch = 4;
    b.f.onMarker(handoff(1), 40); // at the tail, but a later epoch was already applied
    const quiet = Date.now() + 150;
    await until(() => Date.now() > quiet || b.events.promoted > 0, 1_000, 'a quiet moment');
    assert.is(b.events.promoted, 0, 'history does not promote');
    storeEpoch = 4;
    tail = 41;
    b.f.onMarker(handoff(4), 41);
    await until(() => b.events.promoted === 1, 1_000, 'the live hand-off to promote');
    assert.is(await b.f.takeEpoch(), 5);
  } finally {
    b.f.close();
  }
});

t('a leader that hears a later epoch is deposed; its lease is gone', async (ctx) => {
  const a = node(ctx, 'rival', 'a');
  const b = node(ctx, 'rival', 'b');
  try {
    a.f.startLeading((await a.f.takeEpoch())!);
    assert.ok(await a.f.waitForLease(1_000));
    // b, a follower that heard a, won the next epoch (as if a had been paused past its lease), and beats.
    b.f.startFollowing();
    await until(() => b.f.status().leaderNode === 'a', 1_000, 'b to hear a');
    const e = await b.f.takeEpoch();
    assert.is(e, 2);
    b.f.startLeading(e!);
    await until(() => a.events.deposed.length === 1, 1_000, 'a to be deposed');
    assert.match(a.events.deposed[0]!, 'epoch 2');
    assert.is(a.f.leaseValid(), false);
    assert.is(b.f.leaseValid(), true);
  } finally {
    a.f.close();
    b.f.close();
  }
});

t('two standbys racing for the same silent leader: exactly one promotes', async (ctx) => {
  const a = node(ctx, 'race', 'a');
  const b = node(ctx, 'race', 'b', 0);
  const c = node(ctx, 'race', 'c', 0); // same rank: a real race, decided by kv.create
  try {
    a.f.startLeading((await a.f.takeEpoch())!);
    b.f.startFollowing();
    c.f.startFollowing();
    await until(() => b.f.status().leaderNode === 'a' && c.f.status().leaderNode === 'a', 1_000, 'both to hear a');
    a.f.close();
    await until(() => b.events.promoted + c.events.promoted >= 1, 3_000, 'a promotion');
    const settle = Date.now() + 200;
    await until(() => Date.now() > settle, 1_000, 'settling');
    assert.is(b.events.promoted + c.events.promoted, 1, JSON.stringify([b.events.logs, c.events.logs]));
  } finally {
    for (const n of [a, b, c]) n.f.close();
  }
});

t('a leader whose quorum check fails gets no lease (reads stop), and gets it back when the check passes', async (ctx) => {
  let reachable = false;
  const a = node(ctx, 'quorum', 'a', 0, async () => {
    if (!reachable) throw new Error('stream leader unreachable');
    return 7;
  });
  try {
    a.f.startLeading((await a.f.takeEpoch())!);
    assert.is(await a.f.waitForLease(400), false, 'beats reach the local server, but no lease without the quorum');
    assert.ok(a.events.logs.some((l) => l.includes('quorum check fails')));
    reachable = true;
    assert.ok(await a.f.waitForLease(1_000));
  } finally {
    a.f.close();
  }
});

t('a leader whose quorum check reports a tail past its own appends is deposed; its own appends in flight are not', async (ctx) => {
  let tail = 7;
  let appended = 7;
  const a = node(ctx, 'foreign-append', 'a', 0, async () => tail, { appendedThrough: () => appended });
  try {
    a.f.startLeading((await a.f.takeEpoch())!);
    assert.ok(await a.f.waitForLease(1_000));
    // Its own append in flight: sent (appendedThrough 8) and already in the log's tail.
    appended = 8;
    tail = 8;
    const quiet = Date.now() + 300;
    await until(() => Date.now() > quiet || a.events.deposed.length > 0, 1_000, 'a few renewals');
    assert.equal(a.events.deposed, []);
    assert.ok(a.f.leaseValid());
    // Someone else appended seq 9 (a standby that could not hear this leader, on the far side of a cut route).
    tail = 9;
    await until(() => a.events.deposed.length > 0, 1_000, 'a to be deposed');
    assert.match(a.events.deposed[0]!, /tail is seq 9, past seq 8/);
    assert.not.ok(a.f.leaseValid(), 'no lease: reads stop');
  } finally {
    a.f.close();
  }
});

t.run();
