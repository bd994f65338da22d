/**
 * The failover plumbing against a real nats-server: epoch claims (first `kv.create` wins), fenced marker appends,
 * the takeover sequence, and heartbeats renewing a leader's lease.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, type NatsConnection, type JetStreamClient, type JetStreamManager } from 'nats';
import { startNatsServer, waitForJetStream, type NatsServerProcess } from '../../cli/index.ts';
import { ErrorCode, ShardmindError, heartbeatSubject } from '../../protocol/index.ts';
import { EpochRegistry } from '../../actors/epoch.ts';
import { appendMarker, epochMarker, handoffMarker, isHandoffTo } from '../../actors/marker.ts';
import { takeOver } from '../../actors/takeover.ts';
import { HeartbeatMonitor, HeartbeatPublisher, type Heartbeat } from '../../actors/heartbeat.ts';
import { LeaderLease } from '../../actors/lease.ts';
import { ManualClock, systemTimerClock } from '../../actors/timers.ts';
import { ensureLogStream, logTail, readLog } from '../../actors/log-stream.ts';
import type { LogEntry } from '../../shards/index.ts';

interface Ctx {
  server: NatsServerProcess;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

const t = suite<Ctx>('failover plumbing', {} as Ctx);

t.before(async (ctx) => {
  ctx.server = await startNatsServer();
  ctx.nc = await connect({ servers: ctx.server.url });
  await waitForJetStream(ctx.nc);
  ctx.jsm = await ctx.nc.jetstreamManager({ checkAPI: false });
  ctx.js = ctx.nc.jetstream();
});

t.after(async (ctx) => {
  await ctx.nc?.close();
  await ctx.server?.destroy();
});

/** Polls `cond` every 10 ms until it holds or `ms` pass. */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

t('epochs - of 5 nodes claiming the same epoch at once exactly one wins; keys are kept', async ({ js }) => {
  const epochs = await EpochRegistry.open(js, { replicas: 1 });
  const nodes = ['a', 'b', 'c', 'd', 'e'];
  const results = await Promise.all(nodes.map((n) => epochs.claim('calendar', 1, n)));
  assert.is(results.filter(Boolean).length, 1);
  const winner = nodes[results.indexOf(true)]!;
  assert.is((await epochs.holder('calendar', 1))?.node, winner);
  assert.is(await epochs.claim('calendar', 1, winner), false, 'even the winner cannot claim it twice');
  assert.ok(await epochs.claim('calendar', 2, 'b'));
  assert.ok(await epochs.claim('calendar', 10, 'c'));
  assert.is(await epochs.latest('calendar'), 10);
  assert.is(await epochs.latest('email'), 0, 'epochs are per domain');
  const again = await EpochRegistry.open(js, { replicas: 1 });
  assert.is(await again.latest('calendar'), 10, 'reopening binds to the same bucket');
});

t('markers - an append with a stale expected sequence is fenced with NOT_LEADER', async ({ js, jsm }) => {
  await ensureLogStream(jsm, 'fence', 1);
  const s1 = await appendMarker(js, 'fence', epochMarker(1, 'a', Date.now()), 0);
  assert.is(s1, 1);
  const s2 = await appendMarker(js, 'fence', epochMarker(2, 'b', Date.now()), 1);
  assert.is(s2, 2);
  try {
    await appendMarker(js, 'fence', handoffMarker(1, 'a', 'c', Date.now()), 1);
    assert.unreachable('the stale append must be fenced');
  } catch (err) {
    assert.instance(err, ShardmindError);
    assert.is((err as ShardmindError).code, ErrorCode.NOT_LEADER);
  }
  assert.is(await logTail(jsm, 'fence'), 2, 'the fenced marker is not in the log');
  assert.ok(isHandoffTo(handoffMarker(2, 'b', 'c', 0), 'c'));
  assert.not.ok(isHandoffTo(handoffMarker(2, 'b', 'c', 0), 'b'));
});

/** A follower tail over the real log: records applied sequences and entries, like a shard's follower would. */
function tailLog(js: JetStreamClient, domain: string) {
  const ac = new AbortController();
  const entries: { seq: number; entry: LogEntry | undefined }[] = [];
  let applied = 0;
  const done = readLog(js, domain, {
    fromSeq: 1,
    signal: ac.signal,
    onBatch: async (batch) => {
      entries.push(...batch);
      applied = batch[batch.length - 1]!.seq;
    },
  });
  return {
    entries,
    applied: () => applied,
    waitApplied: async (seq: number, timeoutMs: number) => until(() => applied >= seq, timeoutMs, `applied ≥ ${seq}`),
    stop: async () => {
      ac.abort();
      await done;
    },
  };
}

t('takeover - claims the next epoch, catches up to the tail, appends its marker after it', async ({ js, jsm }) => {
  const domain = 'takeover';
  await ensureLogStream(jsm, domain, 1);
  const epochs = await EpochRegistry.open(js, { replicas: 1 });
  // The old leader (epoch 1) wrote its marker and some entries, then fell silent.
  let last = await appendMarker(js, domain, epochMarker(1, 'old', Date.now()), 0);
  assert.ok(await epochs.claim(domain, 1, 'old'));
  for (let i = 0; i < 40; i++) {
    last = await appendMarker(js, domain, { ...epochMarker(1, 'old', Date.now()), opId: `w${i}` }, last);
  }
  const tail = tailLog(js, domain);
  try {
    const r = await takeOver({
      js,
      jsm,
      epochs,
      domain,
      node: 'new',
      clock: systemTimerClock,
      knownEpoch: 1,
      waitApplied: tail.waitApplied,
    });
    assert.ok(r.won, JSON.stringify(r));
    if (!r.won) return;
    assert.is(r.epoch, 2);
    assert.is(r.tail, last);
    assert.is(r.seq, last + 1);
    assert.is(tail.applied(), r.seq, 'the marker is applied when takeOver returns');
    const marker = tail.entries.at(-1)?.entry;
    assert.equal(marker && marker.op === 'marker' ? [marker.kind, marker.epoch, marker.node] : [], ['epoch', 2, 'new']);
    // The old leader wakes up and appends with what it believed was the last sequence: fenced.
    try {
      await appendMarker(js, domain, { ...epochMarker(1, 'old', Date.now()), opId: 'late' }, last);
      assert.unreachable('the old leader must be fenced');
    } catch (err) {
      assert.is((err as ShardmindError).code, ErrorCode.NOT_LEADER);
    }
    // A second candidate that raced for the same epoch loses at the claim.
    const second = await takeOver({
      js,
      jsm,
      epochs,
      domain,
      node: 'other',
      clock: systemTimerClock,
      knownEpoch: 1,
      waitApplied: tail.waitApplied,
    });
    assert.is(second.won, false, 'it saw the same leader (epoch 1) die: it races for epoch 2 and loses');
    if (!second.won) assert.is(second.reason, 'epoch-taken');
  } finally {
    await tail.stop();
  }
});

t('takeover - a write landing after the tail was read fences the candidate', async ({ js, jsm }) => {
  const domain = 'race';
  await ensureLogStream(jsm, domain, 1);
  const epochs = await EpochRegistry.open(js, { replicas: 1 });
  const first = await appendMarker(js, domain, epochMarker(1, 'old', Date.now()), 0);
  const tail = tailLog(js, domain);
  try {
    const r = await takeOver({
      js,
      jsm,
      epochs,
      domain,
      node: 'new',
      clock: systemTimerClock,
      knownEpoch: 1,
      // The old leader was alive after all: it appends while the candidate catches up.
      waitApplied: async (seq, ms) => {
        await appendMarker(js, domain, { ...epochMarker(1, 'old', Date.now()), opId: 'alive' }, first);
        await tail.waitApplied(seq, ms);
      },
    });
    assert.is(r.won, false);
    if (!r.won) assert.is(r.reason, 'fenced');
    assert.is(await logTail(jsm, domain), 2);
  } finally {
    await tail.stop();
  }
});

t('heartbeats - each beat that makes the round trip renews the lease; followers ignore older epochs', async ({ nc }) => {
  const clock = new ManualClock(Date.now());
  const lease = new LeaderLease(1500, 150);
  let epoch = 3;
  const publisher = new HeartbeatPublisher({
    nc,
    domain: 'hb',
    node: 'mini-1',
    clock,
    heartbeatMs: 250,
    state: () => ({ epoch, seq: 42 }),
    onRenew: (sentAt) => lease.renew(sentAt),
  });
  const seen: Heartbeat[] = [];
  const monitor = new HeartbeatMonitor({
    nc,
    domain: 'hb',
    clock,
    minEpoch: () => 3,
    onHeartbeat: (hb) => seen.push(hb),
  });
  monitor.start();
  await nc.flush();
  const start = clock.now();
  publisher.start();
  await until(() => lease.leaseUntil === start + 1350, 2_000, 'the first renewal');
  await until(() => seen.length === 1, 2_000, 'the first heartbeat');
  assert.equal([seen[0]!.node, seen[0]!.epoch, seen[0]!.seq], ['mini-1', 3, 42]);
  clock.advance(250);
  await until(() => lease.leaseUntil === start + 250 + 1350, 2_000, 'the second renewal');
  epoch = 2; // a deposed leader's beats
  clock.advance(250);
  await nc.flush();
  await until(() => lease.leaseUntil === start + 500 + 1350, 2_000, 'the third renewal');
  await nc.flush();
  assert.is(seen.length, 2, 'the epoch-2 beat is ignored');
  assert.is(monitor.last?.hb.epoch, 3);
  // Garbage on the subject is ignored, never a crash.
  nc.publish(heartbeatSubject('hb'), new Uint8Array([0xc1, 0x00]));
  await nc.flush();
  publisher.stop();
  monitor.stop();
  assert.is(clock.pending, 0, 'stop cancels the beat timer');
});

t.run();
