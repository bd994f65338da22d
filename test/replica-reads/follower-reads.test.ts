/**
 * Replica reads on a real 3-node NATS cluster with three `shardmind host` processes (email led by mini-1, mini-2
 * and mini-3 following): each replica answers `sm.replica.email.<op>.<node>` and says so, and the any-replica
 * subject spreads over them;
 * read-your-writes through a follower; bad `maxStaleMs` refused; a follower too stale for the request passes it to
 * the leader; and with the leader's host frozen (SIGSTOP) the followers' bound grows, so only reads that accept
 * that much staleness are answered by them. The lease is long (8 s) so that no failover starts while frozen.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { NatsConnection } from 'nats';
import { connect, type ShardmindClient } from '../../client/index.ts';
import { replicaNodeSubject, replicaSubject, shardSubject } from '../../protocol/index.ts';
import { DOMAIN, NODES, eventually, leaderOf, startFaultCluster, streamTail, type FaultCluster } from '../failover/fault-kit.ts';
import { ask, connectTo, staleMsOn, type ReadReply } from './kit.ts';

interface Ctx {
  cluster?: FaultCluster;
  /** conns[i]: a connection to server i, the one host `NODES[i]` is on. */
  conns: NatsConnection[];
  clients: ShardmindClient[];
}

const s = suite<Ctx>('replica reads', { conns: [], clients: [] });

s.before(async (ctx) => {
  ctx.cluster = await startFaultCluster({ leaseMs: 8_000, heartbeatMs: 250 });
  const { nats, nc } = ctx.cluster;
  await eventually('mini-1 to lead email', async () => ((await leaderOf(nc))?.node === 'mini-1' ? true : undefined), 30_000);
  for (const url of nats.urls) ctx.conns.push(await connectTo(url, nats.urls));
  // Every follower holds a bound (it has heard a leased beat it is caught up to).
  for (const node of ['mini-2', 'mini-3']) {
    await eventually(`${node} to have a staleness bound`, async () => ((await staleMsOn(nc, node, DOMAIN)) !== undefined ? true : undefined));
  }
});

s.after(async (ctx) => {
  ctx.cluster?.hosts.host('mini-1').kill('SIGCONT');
  for (const c of ctx.clients) await c.close().catch(() => undefined);
  for (const c of ctx.conns) await c.close().catch(() => undefined);
  await ctx.cluster?.destroy();
});

async function remember(nc: NatsConnection, subject: string, text: string): Promise<{ seq: number; factId: string }> {
  const r = await ask<{ seq: number; factId: string; error?: unknown }>(nc, shardSubject(DOMAIN, 'remember'), {
    v: 1,
    agent: 'replica-test',
    opId: `op-${subject}`,
    fact: { text, subject, predicate: 'noted', object: 'yes' },
  });
  assert.ok(!r.error, JSON.stringify(r));
  return r;
}

s('each replica answers on its node subject and says who it is; the any-replica subject reaches them all', async (ctx) => {
  const { factId, seq } = await remember(ctx.conns[0]!, 'alpha', 'alpha is written through the leader');
  const minSeq = { [DOMAIN]: seq };
  for (let i = 0; i < NODES.length; i++) {
    const nc = ctx.conns[i]!;
    const node = NODES[i]!;
    const recall = await ask<ReadReply>(nc, replicaNodeSubject(DOMAIN, 'recall', node), { v: 1, subject: 'alpha', minSeq, maxStaleMs: 10_000 });
    assert.is(recall.error, undefined, JSON.stringify(recall.error));
    assert.is(recall.servedBy, node);
    assert.type(recall.staleMs, 'number');
    assert.ok(recall.staleMs! <= 10_000);
    if (i === 0) assert.is(recall.staleMs, 0, 'the leader is fresh');
    assert.equal(recall.facts?.map((f) => f.id), [factId]);
    assert.ok((recall.seqs?.[DOMAIN] ?? 0) >= seq);

    // JSON too, and get and history.
    const get = await ask<ReadReply>(nc, replicaNodeSubject(DOMAIN, 'get', node), { v: 1, factId, minSeq, maxStaleMs: 10_000 }, { encoding: 'json' });
    assert.is(get.servedBy, node);
    assert.is(get.fact?.id, factId);
    const history = await ask<ReadReply>(nc, replicaNodeSubject(DOMAIN, 'history', node), { v: 1, subject: 'alpha', minSeq, maxStaleMs: 10_000 });
    assert.is(history.servedBy, node);
    assert.equal(history.facts?.map((f) => f.id), [factId]);
  }
  const servedBy = new Set<string>();
  for (let k = 0; k < 30; k++) {
    const r = await ask<ReadReply>(ctx.conns[k % 3]!, replicaSubject(DOMAIN, 'recall'), { v: 1, subject: 'alpha', minSeq, maxStaleMs: 10_000 });
    assert.equal(r.facts?.map((f) => f.id), [factId], JSON.stringify(r));
    servedBy.add(r.servedBy!);
  }
  assert.ok(servedBy.size >= 2, `answered by several replicas: ${[...servedBy].join(', ')}`);
  const none = await ask<ReadReply>(ctx.conns[0]!, replicaNodeSubject(DOMAIN, 'recall', 'mini-9'), { v: 1, subject: 'alpha' }).catch((e: { code?: string }) => e.code);
  assert.is(none, '503', 'a node without the shard: no responders');
});

s('read-your-writes: written through the leader, read at once from a follower with minSeq', async (ctx) => {
  const client = await connect({ connection: ctx.conns[2]!, agent: 'ryw-agent', node: 'mini-3' });
  ctx.clients.push(client);
  for (let i = 0; i < 25; i++) {
    const w = await client.remember({ text: `ryw fact ${i}`, subject: `ryw-${i}`, predicate: 'noted', object: 'yes' }, { domain: DOMAIN, direct: true });
    const r = await client.recall({ subject: `ryw-${i}`, domain: DOMAIN, maxStaleMs: 60_000 });
    assert.is(r.servedBy, 'mini-3', 'the follower on the client’s node answered');
    assert.equal(r.facts.map((f) => f.id), [w.factId], `write ${i} (seq ${w.seq}) is in the follower's answer`);
    const got = await client.get(w.factId, { maxStaleMs: 60_000 });
    assert.is(got?.id, w.factId);
  }
});

s('a client whose node holds no replica of the domain reads from any replica', async (ctx) => {
  const client = await connect({ connection: ctx.conns[0]!, agent: 'elsewhere-agent', node: 'mini-9' });
  ctx.clients.push(client);
  const w = await client.remember({ text: 'written from a Mini without the shard', subject: 'elsewhere', predicate: 'noted', object: 'yes' }, { domain: DOMAIN, direct: true });
  for (let i = 0; i < 5; i++) {
    const r = await client.recall({ subject: 'elsewhere', domain: DOMAIN, maxStaleMs: 60_000 });
    assert.ok(NODES.includes(r.servedBy as (typeof NODES)[number]), String(r.servedBy));
    assert.equal(r.facts.map((f) => f.id), [w.factId]);
  }
  const history = await client.history('elsewhere', 'noted', { domain: DOMAIN, maxStaleMs: 60_000 });
  assert.equal(history.map((f) => f.id), [w.factId]);
});

s('bad maxStaleMs is BAD_REQUEST naming the field, on the replica and the leader subjects, and changes nothing', async (ctx) => {
  const nc = ctx.conns[1]!;
  const tail = await streamTail(nc);
  const bad: unknown[] = [-1, 1.5, '100', true, { ms: 1 }, Number.NaN];
  for (const value of bad) {
    for (const encoding of ['msgpack', 'json'] as const) {
      if (encoding === 'json' && Number.isNaN(value)) continue; // JSON has no NaN
      for (const subject of [replicaSubject(DOMAIN, 'recall'), replicaSubject(DOMAIN, 'get'), replicaSubject(DOMAIN, 'history'), shardSubject(DOMAIN, 'recall')]) {
        const body = { v: 1, query: 'alpha', subject: 'alpha', factId: 'email:x:0', maxStaleMs: value };
        const r = await ask<ReadReply>(nc, subject, body, { encoding });
        assert.is(r.error?.code, 'BAD_REQUEST', `${subject} ${encoding} ${String(value)}: ${JSON.stringify(r)}`);
        assert.match(r.error!.message, /^maxStaleMs: /);
        assert.is(r.error!.retryable, false);
      }
    }
  }
  const write = await ask<ReadReply>(nc, replicaSubject(DOMAIN, 'remember'), { v: 1, agent: 'a', fact: { text: 'not here' } });
  assert.is(write.error?.code, 'BAD_REQUEST', 'writes are not served on the replica subject');
  assert.is(await streamTail(nc), tail, 'nothing was written');
  const ok = await ask<ReadReply>(nc, replicaSubject(DOMAIN, 'recall'), { v: 1, subject: 'alpha', maxStaleMs: 0x7fff_ffff });
  assert.is(ok.error, undefined, 'a large maxStaleMs is fine');
});

s('a follower too stale for the request passes it to the leader: one answer, from the leader', async (ctx) => {
  const nc = ctx.conns[1]!;
  const mini2 = (op: string): string => replicaNodeSubject(DOMAIN, op, 'mini-2');
  let fromLeader = 0;
  for (let i = 0; i < 10; i++) {
    // maxStaleMs 0: a follower qualifies only in the very millisecond a beat arrived.
    const r = await ask<ReadReply>(nc, mini2('recall'), { v: 1, subject: 'alpha', maxStaleMs: 0 });
    assert.is(r.error, undefined, JSON.stringify(r.error));
    assert.is(r.staleMs, 0, JSON.stringify(r));
    assert.ok(r.servedBy === 'mini-1' || r.servedBy === 'mini-2', String(r.servedBy));
    if (r.servedBy === 'mini-1') fromLeader++;
    assert.is(r.facts?.length, 1);
  }
  assert.ok(fromLeader >= 5, `most were forwarded to the leader (${fromLeader} of 10)`);
  // The default (limits.replicaMaxStaleMs, 1000 ms) is met by a follower hearing beats every 250 ms.
  const byDefault = await ask<ReadReply>(nc, mini2('recall'), { v: 1, subject: 'alpha' });
  assert.is(byDefault.servedBy, 'mini-2');
  assert.ok(byDefault.staleMs! <= 1_000);
});

s('leader frozen: the followers’ bound grows; only reads that accept it are answered by them', async (ctx) => {
  const { cluster } = ctx;
  const nc = ctx.conns[1]!;
  const mini2 = replicaNodeSubject(DOMAIN, 'recall', 'mini-2');
  const leader = cluster!.hosts.host('mini-1');
  leader.kill('SIGSTOP');
  try {
    const stale = await eventually('mini-2 to be over a second stale', async () => {
      const ms = await staleMsOn(cluster!.nc, 'mini-2', DOMAIN);
      return ms !== undefined && ms >= 1_200 ? ms : undefined;
    });
    // Too stale for 300 ms (or the 1000 ms default): not answered from mini-2's state but passed to the leader,
    // which is frozen — so no answer in time. A client sees a timeout, which it retries.
    for (const body of [{ v: 1, subject: 'alpha', maxStaleMs: 300 }, { v: 1, subject: 'alpha' }]) {
      const outcome = await ask<ReadReply>(nc, mini2, body, { timeoutMs: 1_000 }).then(
        (r) => `answered ${JSON.stringify(r)}`,
        (err: { code?: string }) => `error ${String(err.code)}`,
      );
      assert.is(outcome, 'error TIMEOUT', `a too-stale follower must not answer: ${outcome}`);
    }
    const lenient = await ask<ReadReply>(nc, mini2, { v: 1, subject: 'alpha', maxStaleMs: 60_000 });
    assert.is(lenient.servedBy, 'mini-2');
    assert.ok(lenient.staleMs! >= stale, `it says how stale: ${lenient.staleMs} ≥ ${stale}`);
    assert.is(lenient.facts?.length, 1);
  } finally {
    leader.kill('SIGCONT');
  }
  // Back to normal once the leader beats again (its lease held: no failover).
  await eventually('mini-2 to be fresh again', async () => {
    const r = await ask<ReadReply>(nc, mini2, { v: 1, subject: 'alpha', maxStaleMs: 1_000 }, { timeoutMs: 1_000 });
    return r.servedBy === 'mini-2' && r.staleMs! <= 1_000 ? true : undefined;
  });
  assert.is((await leaderOf(cluster!.nc))?.node, 'mini-1', 'no failover happened');
});

s.run();
