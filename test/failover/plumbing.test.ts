/**
 * The failover plumbing against a real nats-server: epoch claims (first `kv.create` wins) and heartbeats renewing
 * a leader's lease. (The takeover itself — catch up, fenced epoch marker — is the shard machine's `claiming` state,
 * exercised end to end by the fault tests.)
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, type NatsConnection, type JetStreamClient } from 'nats';
import { startNatsServer, waitForJetStream, type NatsServerProcess } from '../../cli/index.ts';
import { heartbeatSubject } from '../../protocol/index.ts';
import { type Heartbeat, EpochRegistry, HeartbeatMonitor, HeartbeatPublisher, LeaderLease, ManualClock } from '../../actors/index.ts';

interface Ctx {
  server: NatsServerProcess;
  nc: NatsConnection;
  js: JetStreamClient;
}

const t = suite<Ctx>('failover plumbing', {} as Ctx);

t.before(async (ctx) => {
  ctx.server = await startNatsServer();
  ctx.nc = await connect({ servers: ctx.server.url });
  await waitForJetStream(ctx.nc);
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
    state: () => ({ epoch, seq: 42, hash: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4' }),
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
  assert.is(seen[0]!.hash, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4', 'a beat names the hash of the entry at its seq');
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
