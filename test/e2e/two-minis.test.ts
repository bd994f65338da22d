/**
 * Two Minis end to end: a real 2-server NATS cluster (one server per Mini), two `shardmind host` processes.
 * mini-1 leads email and calendar, mini-2 leads files and stands by for email. Agents talk raw NATS (msgpack, or
 * JSON with the header), each through its own Mini's server.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, headers, type NatsConnection } from 'nats';
import { startNatsCluster, waitForJetStream, type NatsCluster } from '../../cli/index.ts';
import type { ClusterConfigInput } from '../../config/index.ts';
import { encodeEntry } from '../../actors/index.ts';
import { decodePayload, encodePayload, logStream, logSubject, shardSubject } from '../../protocol/index.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';

interface Ctx {
  nats?: NatsCluster;
  hosts?: HostCluster;
  agent1?: NatsConnection;
  agent2?: NatsConnection;
}

const e2e = suite<Ctx>('two minis');

function config(urls: readonly string[]): ClusterConfigInput {
  const [u1, u2] = urls as [string, string];
  return {
    cluster: { name: 'e2e' },
    nodes: [
      { name: 'mini-1', nats: [u1, u2] },
      { name: 'mini-2', nats: [u2, u1] },
    ],
    domains: [
      { name: 'email', description: 'mail', seeds: ['send an email'], predicates: { prefers_attachment_format: { cardinality: 'one', halfLifeDays: 120 } } },
      { name: 'calendar', description: 'meetings', seeds: ['book a meeting'] },
      { name: 'files', description: 'documents', seeds: ['save the file'] },
    ],
    replication: { leaseMs: 600, heartbeatMs: 150 },
    placement: {
      email: { leader: 'mini-1', standbys: ['mini-2'] },
      calendar: { leader: 'mini-1' },
      files: { leader: 'mini-2', standbys: ['mini-1'] },
    },
  };
}

async function ask(nc: NatsConnection, subject: string, body: unknown, json = false): Promise<Record<string, unknown>> {
  const encoding = json ? 'json' : 'msgpack';
  const h = headers();
  if (json) h.set('content-type', 'application/json');
  const msg = await nc.request(subject, encodePayload(body, encoding), { timeout: 5_000, headers: h });
  return decodePayload(msg.data, encoding) as Record<string, unknown>;
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const remember = (opId: string, text: string, extra: Record<string, unknown> = {}) => ({
  v: 1,
  agent: 'agent-a',
  node: 'mini-1',
  opId,
  fact: { text, subject: 'user', predicate: 'prefers_attachment_format', object: 'pdf', confidence: 0.9, ...extra },
});

e2e.before(async (ctx) => {
  ctx.nats = await startNatsCluster(2);
  const urls = ctx.nats.urls;
  ctx.agent1 = await connect({ servers: urls[0] });
  ctx.agent2 = await connect({ servers: urls[1] });
  await waitForJetStream(ctx.agent1);
  ctx.hosts = await startHosts({ config: config(urls) });
});

e2e.after(async (ctx) => {
  await ctx.agent1?.close();
  await ctx.agent2?.close();
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

e2e('hosts report their roles: mini-1 leads email, mini-2 follows it', async (ctx) => {
  const s1 = await ctx.hosts!.host('mini-1').status();
  const s2 = await ctx.hosts!.host('mini-2').status();
  const role = (s: typeof s1, d: string) => s.shards.find((x) => x.domain === d)?.state;
  assert.is(role(s1, 'email'), 'leading');
  assert.is(role(s1, 'calendar'), 'leading');
  assert.is(role(s1, 'files'), 'following');
  assert.is(role(s2, 'files'), 'leading');
  assert.is(role(s2, 'email'), 'following');
  assert.is(role(s2, 'calendar'), undefined, 'calendar is not placed on mini-2');
});

e2e('an agent on mini-1 remembers; an agent on mini-2 recalls it', async (ctx) => {
  const r = await ask(ctx.agent1!, shardSubject('email', 'remember'), remember('op-pdf-1', 'The user prefers PDF attachments over links'));
  assert.is(r['status'], 'created', JSON.stringify(r));
  assert.is(r['domain'], 'email');
  assert.type(r['seq'], 'number');
  const seq = r['seq'] as number;
  const recall = await ask(ctx.agent2!, shardSubject('email', 'recall'), {
    v: 1,
    agent: 'agent-b',
    query: 'send Bob the Q3 report: attachment or link?',
    minSeq: { email: seq },
  });
  const facts = recall['facts'] as { id: string; text: string; object: unknown }[];
  assert.ok(facts.length >= 1, JSON.stringify(recall));
  assert.is(facts[0]?.id, r['factId']);
  assert.is(facts[0]?.text, 'The user prefers PDF attachments over links');
  assert.is(facts[0]?.object, 'pdf');
});

e2e('a remember retried with the same opId is applied once', async (ctx) => {
  const first = await ask(ctx.agent1!, shardSubject('email', 'remember'), remember('op-retry-1', 'Carol signs emails with her first name'));
  const again = await ask(ctx.agent2!, shardSubject('email', 'remember'), remember('op-retry-1', 'Carol signs emails with her first name'));
  assert.is(again['factId'], first['factId']);
  assert.is(again['seq'], first['seq']);
  assert.is(again['duplicate'], true);
  assert.is(first['duplicate'], undefined);
  const history = await ask(ctx.agent2!, shardSubject('email', 'history'), { v: 1, subject: 'user', predicate: 'prefers_attachment_format' });
  const ids = (history['facts'] as { id: string }[]).map((f) => f.id);
  assert.is(ids.filter((id) => id === first['factId']).length, 1);
});

e2e('JSON in, JSON out; an unknown domain gets UNKNOWN_DOMAIN', async (ctx) => {
  const r = await ask(ctx.agent2!, shardSubject('files', 'remember'), { v: 1, agent: 'agent-c', fact: { text: 'Budgets live in Finance/Reports' } }, true);
  assert.is(r['status'], 'created', JSON.stringify(r));
  const bad = await ask(ctx.agent1!, shardSubject('sports', 'recall'), { v: 1, query: 'score' }, true);
  assert.is((bad['error'] as { code: string }).code, 'UNKNOWN_DOMAIN');
  const malformed = await ctx.agent1!.request(shardSubject('calendar', 'remember'), new TextEncoder().encode('{"v":1,'), {
    timeout: 5_000,
    headers: (() => {
      const h = headers();
      h.set('content-type', 'application/json');
      return h;
    })(),
  });
  assert.is((JSON.parse(new TextDecoder().decode(malformed.data)) as { error: { code: string } }).error.code, 'BAD_REQUEST');
});

e2e('the standby on mini-2 tails the email log into its own LMDB', async (ctx) => {
  const leader = (await ctx.hosts!.host('mini-1').shard('email'))!;
  await eventually('mini-2 to apply the email log', async () => {
    const s = await ctx.hosts!.host('mini-2').shard('email');
    return s && s.appliedSeq >= leader.appliedSeq ? s : undefined;
  });
});

e2e('fencing: another writer appends behind the leader, its next append is rejected, it says NOT_LEADER and stops leading; the standby takes over', async (ctx) => {
  const jsm = await ctx.agent1!.jetstreamManager({ checkAPI: false });
  const tail = (await jsm.streams.info(logStream('email'))).state.last_seq;
  const intruder = encodeEntry({
    v: 1,
    op: 'marker',
    kind: 'epoch',
    epoch: 99,
    node: 'intruder',
    opId: 'intruder-epoch-99',
    recordedAt: Date.now(),
    source: { agent: 'intruder', node: 'intruder' },
  });
  const ack = await ctx.agent1!.jetstream().publish(logSubject('email'), intruder, { expect: { lastSequence: tail } });
  assert.is(ack.seq, tail + 1);

  const r = await ask(ctx.agent1!, shardSubject('email', 'remember'), remember('op-after-fence', 'The user reads mail at 8am'));
  const error = r['error'] as { code: string; retryable: boolean } | undefined;
  assert.is(error?.code, 'NOT_LEADER', JSON.stringify(r));
  assert.is(error?.retryable, true);

  const s = await eventually('mini-1 to stop leading email', async () => {
    const st = await ctx.hosts!.host('mini-1').shard('email');
    return st && st.state === 'following' ? st : undefined;
  });
  assert.ok(s.appliedSeq >= tail + 1, 'the fenced leader caught up past the intruder');
  assert.match(ctx.hosts!.host('mini-1').stderr(), /fenced/);
  // mini-1 stopped heartbeating, so after the lease a live replica claims the next epoch (kv.create: exactly one
  // wins) and takes over — usually the standby on mini-2, but the fenced mini-1, now a follower watching the same
  // lease, may win the race just as legitimately. The refused write goes through on retry (same opId: applied once).
  const retried = await eventually('a new leader to take email over and accept the retried write', async () => {
    const r2 = await ask(ctx.agent2!, shardSubject('email', 'remember'), remember('op-after-fence', 'The user reads mail at 8am'));
    return typeof r2['seq'] === 'number' && r2['error'] === undefined ? r2 : undefined;
  });
  assert.ok((retried['seq'] as number) > tail + 1);
  const leaders = [];
  for (const node of ['mini-1', 'mini-2']) {
    const st = await ctx.hosts!.host(node).shard('email');
    if (st?.state === 'leading') leaders.push({ node, epoch: st.epoch });
  }
  assert.is(leaders.length, 1, `exactly one leader of email: ${JSON.stringify(leaders)}`);
  assert.ok(leaders[0]!.epoch > 99, `the new leader's epoch ${leaders[0]!.epoch} is past the intruder's`);
  const relayed = (await ctx.hosts!.host(leaders[0]!.node).status()).relay;
  assert.ok((relayed['shard:email:PROMOTE'] ?? 0) >= 1, `failover's PROMOTE passed the relay: ${JSON.stringify(relayed)}`);
  const again = await ask(ctx.agent1!, shardSubject('email', 'remember'), remember('op-after-fence', 'The user reads mail at 8am'));
  assert.is(again['seq'], retried['seq'], 'the same opId is applied once');
  // The other shards were not disturbed.
  const cal = await ask(ctx.agent1!, shardSubject('calendar', 'remember'), { v: 1, agent: 'a', fact: { text: 'No meetings before 10' } });
  assert.is(cal['status'], 'created');
});

e2e('a host drains on SIGTERM and comes back with its data', async (ctx) => {
  const mini2 = ctx.hosts!.host('mini-2');
  const before = (await mini2.shard('files'))!;
  await mini2.stop();
  assert.is(await mini2.waitExit(), 0, mini2.stderr());
  await mini2.start();
  // Back with its data and settled: leading again, or — if mini-1 took over during the restart (its lease ran out)
  // — following mini-1, which keeps the shard until `shardmind apply` moves it back. Either way a new epoch marker
  // was appended after the replay.
  const after = await eventually('mini-2 to settle after its restart', async () => {
    const s = await mini2.shard('files');
    return s && (s.state === 'leading' || s.state === 'following') && s.appliedSeq > before.appliedSeq ? s : undefined;
  });
  assert.ok(after.appliedSeq > before.appliedSeq, 'a new epoch marker was appended after the replay');
  // Right after a restart another host's guard may not have heard the new leader's first heartbeat yet and
  // answer NOT_LEADER (retryable) first: retry as a client would.
  const recall = await eventually('a recall from the leader after the restart', async () => {
    const r = await ask(ctx.agent2!, shardSubject('files', 'recall'), { v: 1, query: 'budgets finance' });
    return Array.isArray(r['facts']) ? r : undefined;
  });
  assert.ok((recall['facts'] as unknown[]).length >= 1, JSON.stringify(recall));
});

e2e.run();
