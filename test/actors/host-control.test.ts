/**
 * Two in-process hosts on one real nats-server, driven through their control subjects the way `migrate` and
 * `apply` drive them: `follow` starts a replica that catches up, `digest` shows replicas converge, `handoff` moves
 * the leadership with the writes going on, `unfollow` removes a follower but refuses to remove a leader.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { startNatsServer, waitForJetStream, type NatsServerProcess } from '../../cli/index.ts';
import { Host, type HostStatusReply } from '../../actors/index.ts';
import { resolveConfig } from '../../config/index.ts';
import { ctlSubject, decodePayload, encodePayload, shardSubject } from '../../protocol/index.ts';
import { openShardStore } from '../../shards/index.ts';

interface Ctx {
  server?: NatsServerProcess;
  dir?: string;
  a?: Host;
  b?: Host;
  nc?: NatsConnection;
}

const control = suite<Ctx>('host control');

control.before(async (ctx) => {
  ctx.server = await startNatsServer();
  ctx.dir = mkdtempSync(join(tmpdir(), 'sm-host-control-'));
  ctx.nc = await connect({ servers: ctx.server.url });
  await waitForJetStream(ctx.nc);
  const config = resolveConfig({
    nodes: [
      { name: 'a', nats: [ctx.server.url] },
      { name: 'b', nats: [ctx.server.url] },
      // In the config, never started: a hand-off to it is refused (it does not answer).
      { name: 'c', nats: [ctx.server.url] },
    ],
    domains: [{ name: 'email', description: 'mail', seeds: [] }],
    placement: { email: { leader: 'a' } },
    dataDir: ctx.dir,
    replication: { leaseMs: 600, heartbeatMs: 150, replicas: 1 },
  });
  const quiet = process.env["SM_TEST_VERBOSE"] ? (line: string): void => void process.stderr.write(`${new Date().toISOString().slice(11, 23)} ${line}\n`) : (): void => undefined;
  ctx.a = new Host({ config, node: 'a', openStore: openShardStore, log: quiet });
  ctx.b = new Host({ config, node: 'b', openStore: openShardStore, log: quiet });
  await ctx.a.whenReady();
  await ctx.b.whenReady();
});

control.after(async (ctx) => {
  await ctx.a?.drain();
  await ctx.b?.drain();
  await ctx.nc?.close();
  await ctx.server?.destroy();
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

async function ctl(nc: NatsConnection, node: string, op: string, body: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  const m = await nc.request(ctlSubject(node, op), encodePayload({ v: 1, ...body }, 'msgpack'), { timeout: 10_000 });
  return decodePayload(m.data, 'msgpack') as Record<string, unknown>;
}

/** Remembers like a client: retryable errors and timeouts are retried with the same opId (applied once). */
async function remember(nc: NatsConnection, opId: string, text: string): Promise<Record<string, unknown>> {
  for (let attempt = 0; ; attempt++) {
    let r: Record<string, unknown>;
    try {
      const m = await nc.request(shardSubject('email', 'remember'), encodePayload({ v: 1, agent: 't', opId, fact: { text } }, 'msgpack'), { timeout: 2_000 });
      r = decodePayload(m.data, 'msgpack') as Record<string, unknown>;
    } catch (err) {
      r = { v: 1, error: { code: 'TIMEOUT', message: String(err), retryable: true } };
    }
    const err = r['error'] as { retryable?: boolean } | undefined;
    if (!err?.retryable || attempt > 100) return r;
    await new Promise((res) => setTimeout(res, 10));
  }
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const shard = (s: HostStatusReply) => s.shards.find((x) => x.domain === 'email');

control('handoff - to a running node that holds no replica, or to one that does not answer, is refused and changes nothing', async (ctx) => {
  for (let i = 0; i < 5; i++) assert.is((await remember(ctx.nc!, `before-refusal-${i}`, `fact ${i}`))['error'], undefined);
  assert.is(shard(ctx.b!.status()), undefined, 'b runs nothing for email');
  const before = shard(ctx.a!.status())!;
  // Before, this was accepted: a wrote a hand-off marker naming b, stopped leading, and nobody took over.
  const noReplica = await ctl(ctx.nc!, 'a', 'handoff', { domain: 'email', to: 'b' });
  const e1 = noReplica['error'] as { code: string; message: string } | undefined;
  assert.is(e1?.code, 'BAD_REQUEST', JSON.stringify(noReplica));
  assert.match(e1!.message, /^to: "b" holds no replica of email/);
  const silent = await ctl(ctx.nc!, 'a', 'handoff', { domain: 'email', to: 'c' });
  const e2 = silent['error'] as { code: string; message: string } | undefined;
  assert.is(e2?.code, 'UNAVAILABLE', JSON.stringify(silent));
  assert.match(e2!.message, /^to: "c" did not answer/);
  assert.match(e2!.message, /email stays on a/);
  const after = shard(ctx.a!.status())!;
  assert.is(after.state, 'leading');
  assert.is(after.epoch, before.epoch);
  assert.is(after.appliedSeq, before.appliedSeq, 'no marker was appended');
  assert.is((await remember(ctx.nc!, 'after-refusal', 'a still takes writes'))['error'], undefined);
});

control('follow - a node with no placement starts tailing the domain and catches up; digests agree', async (ctx) => {
  for (let i = 0; i < 20; i++) assert.is((await remember(ctx.nc!, `pre-${i}`, `fact ${i}`))['error'], undefined);
  assert.is(shard(ctx.b!.status()), undefined, 'b runs nothing for email yet');
  const r = await ctl(ctx.nc!, 'b', 'follow', { domain: 'email' });
  assert.is((r['shard'] as { domain: string }).domain, 'email');
  const leaderSeq = shard(ctx.a!.status())!.appliedSeq;
  await until('b to catch up', () => {
    const s = shard(ctx.b!.status());
    return s && s.state === 'following' && s.appliedSeq >= leaderSeq ? s : undefined;
  });
  // The store b opened is warmed between requests (`ShardStore.warmUp`), and the status says when it is done.
  await until('b to warm its store', () => (shard(ctx.b!.status())?.warmUp === 'warm' ? true : undefined));
  assert.is(shard(ctx.a!.status())?.warmUp, 'warm', "a's store is warm too");
  const da = await ctl(ctx.nc!, 'a', 'digest', { domain: 'email' });
  const db = await ctl(ctx.nc!, 'b', 'digest', { domain: 'email' });
  assert.is(db['appliedSeq'], da['appliedSeq']);
  assert.is(db['digest'], da['digest']);
  assert.is(((await ctl(ctx.nc!, 'b', 'follow', { domain: 'sports' }))['error'] as { code: string }).code, 'UNKNOWN_DOMAIN');
});

control('handoff - the leader hands off to the follower while writes go on; none is lost', async (ctx) => {
  let writing = true;
  const acked: string[] = [];
  const failures: unknown[] = [];
  const writer = (async () => {
    for (let i = 0; writing; i++) {
      const r = await remember(ctx.nc!, `during-${i}`, `written during the hand-off ${i}`);
      if (r['error'] !== undefined) failures.push(r['error']);
      else acked.push(r['factId'] as string);
    }
  })();
  await until('some writes', () => (acked.length >= 10 ? true : undefined));
  // A target outside the cluster, or the leader itself, is refused and changes nothing: the leader goes on leading
  // (before, 'ghost' was accepted and the domain had no leader until the lease lapsed).
  for (const to of ['ghost', 'a']) {
    const refused = await ctl(ctx.nc!, 'a', 'handoff', { domain: 'email', to });
    assert.is((refused['error'] as { code: string } | undefined)?.code, 'BAD_REQUEST', JSON.stringify(refused));
    assert.match((refused['error'] as { message: string }).message, /^to: /);
  }
  assert.is(shard(ctx.a!.status())?.state, 'leading');
  const reply = await ctl(ctx.nc!, 'a', 'handoff', { domain: 'email', to: 'b' });
  assert.type(reply['seq'], 'number', JSON.stringify(reply));
  assert.type(reply['intakeStoppedAt'], 'string');
  await until('b to lead', () => (shard(ctx.b!.status())?.state === 'leading' ? true : undefined));
  const n = acked.length;
  await until('writes after the hand-off', () => (acked.length >= n + 10 ? true : undefined));
  writing = false;
  await writer;
  assert.equal(failures, [], 'no write failed');
  assert.is(shard(ctx.a!.status())?.state, 'following');
  const bSeq = shard(ctx.b!.status())!.appliedSeq;
  await until('a to catch up with b', () => (shard(ctx.a!.status())!.appliedSeq >= bSeq ? true : undefined));
  for (const id of acked) {
    const m = await ctx.nc!.request(shardSubject('email', 'get'), encodePayload({ v: 1, factId: id }, 'msgpack'), { timeout: 5_000 });
    const r = decodePayload(m.data, 'msgpack') as { fact?: { id: string } };
    assert.is(r.fact?.id, id, `acknowledged fact ${id} is on the new leader`);
  }
});

control('unfollow - refuses the leader, stops a follower', async (ctx) => {
  const refused = await ctl(ctx.nc!, 'b', 'unfollow', { domain: 'email' });
  assert.is((refused['error'] as { code: string }).code, 'BAD_REQUEST');
  const done = await ctl(ctx.nc!, 'a', 'unfollow', { domain: 'email' });
  assert.is(done['stopped'], true);
  assert.is(shard(ctx.a!.status()), undefined);
  const again = await ctl(ctx.nc!, 'a', 'unfollow', { domain: 'email' });
  assert.is(again['stopped'], false, 'unfollow is idempotent');
});

control.run();
