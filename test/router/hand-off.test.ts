/**
 * The router's hand-off (protocol/hand-off.ts): a recall routed to one shard is answered by the shard itself, on the
 * agent's reply subject, with the router's `sm-router-node`; what the shard refuses comes back to the router, which
 * asks again or answers with the error. First against real hosts, then `ShardClient.handOff` against responders
 * on a real nats-server that answer the way an old host (no hand-off) or a refusing one does.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, createInbox, headers, type Msg, type NatsConnection } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import type { ClusterConfigInput } from '../../config/index.ts';
import {
  ErrorCode,
  REPLY_TO_HEADER,
  ROUTER_NODE_HEADER,
  ShardmindError,
  decodePayload,
  encodePayload,
  errorReply,
  heartbeatSubject,
  memSubject,
  shardSubject,
} from '../../protocol/index.ts';
import { ShardClient } from '../../router/index.ts';
import shipped from '../../cluster.config.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';

interface Ctx {
  nats?: NatsServerProcess;
  hosts?: HostCluster;
  nc?: NatsConnection;
}

const t = suite<Ctx>('router hand-off');

function config(url: string): ClusterConfigInput {
  return {
    ...shipped,
    cluster: { name: 'hand-off-test' },
    nodes: ['mini-1', 'mini-2'].map((name) => ({ name, nats: [url] })),
    // files is placed on mini-2, which is never started: nobody leads it for the whole suite.
    placement: {
      calendar: { leader: 'mini-1', standbys: [] },
      email: { leader: 'mini-1', standbys: [] },
      files: { leader: 'mini-2', standbys: [] },
    },
    replication: { replicas: 1, leaseMs: 1500, heartbeatMs: 250 },
    router: { ...shipped.router, shardTimeoutMs: 600 },
  };
}

/** A request with a reply subject we choose, so the test knows which inbox the agent listens on. */
async function requestOn(nc: NatsConnection, subject: string, body: unknown, timeoutMs = 5_000): Promise<{ inbox: string; reply: Msg }> {
  const inbox = createInbox();
  const sub = nc.subscribe(inbox, { max: 1 });
  const got = (async () => {
    for await (const m of sub) return m;
    throw new Error(`no reply on ${subject}`);
  })();
  const timer = setTimeout(() => sub.unsubscribe(), timeoutMs);
  nc.publish(subject, encodePayload(body, 'msgpack'), { reply: inbox });
  try {
    return { inbox, reply: await got };
  } finally {
    clearTimeout(timer);
  }
}

t.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  ctx.hosts = await startHosts({ config: config(ctx.nats.url), nodes: ['mini-1'] });
  ctx.nc = await connect({ servers: ctx.nats.url });
  // The host starts its router after its shards lead: wait until sm.mem.* answers.
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await ctx.nc.request(memSubject('classify'), encodePayload({ v: 1, text: 'hello' }, 'msgpack'), { timeout: 1_000 });
      break;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
});

t.after(async (ctx) => {
  await ctx.nc?.close();
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

t('a one-domain recall is handed to the shard, which answers the agent directly with the router named', async (ctx) => {
  const nc = ctx.nc!;
  const remembered = decodePayload(
    (
      await nc.request(
        memSubject('remember'),
        encodePayload({ v: 1, agent: 'a', domain: 'calendar', fact: { text: 'The user never takes meetings before ten' } }, 'msgpack'),
        { timeout: 5_000 },
      )
    ).data,
    'msgpack',
  ) as { seq: number };
  // A second subscriber on the shard subject sees what the router sent there.
  const seen: Msg[] = [];
  const spy = nc.subscribe(shardSubject('calendar', 'recall'), { callback: (_e, m) => seen.push(m) });
  await nc.flush();
  try {
    // A fixed `asOf`, so that decay gives the same scores to both asks below.
    const asOf = new Date(Date.now() + 3_600_000).toISOString();
    const body = { v: 1, agent: 'b', domain: 'calendar', query: 'meetings before ten', asOf, minSeq: { calendar: remembered.seq } };
    // The router hands off only once it has heard the calendar leader's heartbeat (router/leader-beats.ts).
    let asked: { inbox: string; reply: Msg };
    const deadline = Date.now() + 10_000;
    for (;;) {
      seen.length = 0;
      asked = await requestOn(nc, memSubject('recall'), body);
      await nc.flush();
      if (seen[0]?.headers?.get(REPLY_TO_HEADER)) break;
      if (Date.now() > deadline) throw new Error('the router never handed a recall off');
      await new Promise((r) => setTimeout(r, 50));
    }
    const { inbox, reply } = asked;
    const answer = decodePayload(reply.data, 'msgpack') as { facts: { text: string }[]; domains: string[] };
    assert.equal(answer.domains, ['calendar']);
    assert.equal(answer.facts[0]?.text, 'The user never takes meetings before ten');
    assert.is(reply.headers?.get(ROUTER_NODE_HEADER), 'mini-1', 'the reply names the router that took the request');
    assert.is(seen.length, 1);
    assert.is(seen[0]!.headers?.get(REPLY_TO_HEADER), inbox, 'the shard was asked to answer the agent itself');
    assert.is.not(seen[0]!.reply, inbox, "refusals go to the router's own subject");
    // The same bytes as asking the shard directly.
    const direct = await nc.request(shardSubject('calendar', 'recall'), encodePayload(body, 'msgpack'), { timeout: 5_000 });
    assert.equal(decodePayload(direct.data, 'msgpack'), answer);
  } finally {
    spy.unsubscribe();
  }
});

t('a refusal comes back to the router: with no leader the agent gets a retryable error from the router', async (ctx) => {
  // The shard guard refuses once a lease has passed without a files leader; before that nobody answers at all,
  // and then a handed-off request gets no reply (the agent's own timeout covers it; docs/protocol.md).
  const deadline = Date.now() + 10_000;
  for (;;) {
    const direct = await ctx.nc!.request(shardSubject('files', 'recall'), encodePayload({ v: 1, query: 'q' }, 'msgpack'), { timeout: 1_000 }).catch(() => undefined);
    if (direct && (decodePayload(direct.data, 'msgpack') as { error?: { code: string } }).error?.code === ErrorCode.NOT_LEADER) break;
    if (Date.now() > deadline) throw new Error('the shard guard never refused files');
    await new Promise((r) => setTimeout(r, 100));
  }
  const started = Date.now();
  const { reply } = await requestOn(ctx.nc!, memSubject('recall'), { v: 1, agent: 'b', domain: 'files', query: 'quarterly report' });
  const answer = decodePayload(reply.data, 'msgpack') as { error?: { code: string; retryable: boolean } };
  assert.ok(answer.error, 'an error reply');
  assert.ok(answer.error!.code === ErrorCode.NOT_LEADER || answer.error!.code === ErrorCode.UNAVAILABLE, answer.error!.code);
  assert.is(answer.error!.retryable, true);
  assert.is(reply.headers?.get(ROUTER_NODE_HEADER), 'mini-1');
  assert.ok(Date.now() - started < 3_000, 'answered within the router timeout, not the agent timeout');
});

t('a refusal of a request handed off while a leader is heard comes back to the router, which answers the agent', async (ctx) => {
  // Beats on sm.hb.files that the hosts cannot read (so mini-1's guard still refuses files as leaderless) make the
  // router hear a leader: it hands the recall off, the guard's NOT_LEADER comes back to the router, which asks
  // again within its timeout and answers the agent with the refusal itself.
  const nc = ctx.nc!;
  const beat = setInterval(() => nc.publish(heartbeatSubject('files'), new Uint8Array([0xc0])), 100);
  try {
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    const { reply } = await requestOn(nc, memSubject('recall'), { v: 1, agent: 'b', domain: 'files', query: 'quarterly report' });
    const answer = decodePayload(reply.data, 'msgpack') as { error?: { code: string; retryable: boolean } };
    assert.is(answer.error?.code, ErrorCode.NOT_LEADER);
    assert.is(answer.error!.retryable, true);
    assert.is(reply.headers?.get(ROUTER_NODE_HEADER), 'mini-1');
    assert.ok(Date.now() - started < 3_000, 'answered within the router timeout, not the agent timeout');
  } finally {
    clearInterval(beat);
  }
});

t('bad input is still refused at the router edge and reaches no shard', async (ctx) => {
  const nc = ctx.nc!;
  const seen: Msg[] = [];
  const spy = nc.subscribe(shardSubject('calendar', 'recall'), { callback: (_e, m) => seen.push(m) });
  await nc.flush();
  try {
    const { reply } = await requestOn(nc, memSubject('recall'), { v: 1, agent: 'b', domain: 'calendar', query: 'x', limit: -3 });
    const answer = decodePayload(reply.data, 'msgpack') as { error?: { code: string; message: string } };
    assert.is(answer.error?.code, ErrorCode.BAD_REQUEST);
    assert.match(answer.error!.message, /limit/);
    await nc.flush();
    assert.is(seen.length, 0);
  } finally {
    spy.unsubscribe();
  }
});

t('an sm-reply-to that is not a client inbox leaves the request unanswered (decisions §69)', async (ctx) => {
  const nc = ctx.nc!;
  const body = encodePayload({ v: 1, query: 'meetings' }, 'msgpack');
  for (const bad of ['has space', 'wild.*', 'gt.>', 'a..b', '_INBOX.' + 'x'.repeat(600), '$JS.API.STREAM.PURGE.SM_LOG_CALENDAR', 'sm.log.calendar']) {
    const h = headers();
    h.set(REPLY_TO_HEADER, bad);
    const outcome = await nc.request(shardSubject('calendar', 'recall'), body, { timeout: 400, headers: h }).then(
      () => 'answered',
      (err: Error) => err.message,
    );
    assert.is(outcome, 'TIMEOUT', `not answered, anywhere, for sm-reply-to ${JSON.stringify(bad.slice(0, 40))}`);
  }
  // The same request without the header is answered.
  const plain = await nc.request(shardSubject('calendar', 'recall'), body, { timeout: 5_000 });
  assert.ok(Array.isArray((decodePayload(plain.data, 'msgpack') as { facts?: unknown[] }).facts));
});

t('ShardClient.handOff: an old host answering the router, a refusal then an answer, and a clean hand-off', async (ctx) => {
  const nc = await connect({ servers: ctx.nats!.url });
  const shards = new ShardClient(nc, 800);
  const ok = encodePayload({ v: 1, domains: ['calendar'], facts: [], seqs: { calendar: 7 } }, 'msgpack');
  let mode: 'old-host' | 'refuse-once' | 'hand-off' = 'old-host';
  let asked = 0;
  const responder = nc.subscribe(shardSubject('calendar', 'recall'), {
    callback: (_e, m) => {
      asked++;
      if (mode === 'old-host') m.respond(ok);
      else if (mode === 'refuse-once' && asked === 1) m.respond(encodePayload(errorReply(new ShardmindError(ErrorCode.NOT_LEADER, 'moving')), 'msgpack'));
      else if (mode === 'refuse-once') m.respond(ok);
      else nc.publish(m.headers!.get(REPLY_TO_HEADER), ok);
    },
  });
  // The real calendar leader (mini-1) gets every request too: it honours the hand-off (answers the agent inbox)
  // and answers a plain request, so each case below holds whichever of the two answers first.
  const agentInbox = createInbox();
  const agentGot: Msg[] = [];
  const agent = nc.subscribe(agentInbox, { callback: (_e, m) => agentGot.push(m) });
  await nc.flush();
  const h = (): ReturnType<typeof headers> => {
    const hs = headers();
    hs.set(REPLY_TO_HEADER, agentInbox);
    return hs;
  };
  const body = encodePayload({ v: 1, query: 'anything' }, 'msgpack');
  try {
    const fromOld = await shards.handOff('calendar', 'recall', body, h());
    assert.ok(fromOld instanceof Uint8Array, 'an answer sent back to the router is passed on by the router');

    mode = 'refuse-once';
    asked = 0;
    const afterRefusal = await shards.handOff('calendar', 'recall', body, h());
    assert.ok(afterRefusal instanceof Uint8Array, 'after a refusal the router asked again and got an answer');
    assert.ok(asked >= 2);

    mode = 'hand-off';
    agentGot.length = 0;
    const handed = await shards.handOff('calendar', 'recall', body, h(), 300);
    assert.is(handed, undefined, 'nothing comes back to the router when the shard answered the agent');
    assert.ok(agentGot.length >= 1, 'the agent got the answer');
  } finally {
    responder.unsubscribe();
    agent.unsubscribe();
    shards.close();
    await nc.close();
  }
});

t('a read-your-writes wait the shard cannot meet ends in its TIMEOUT, not the router giving up first', async (ctx) => {
  // shardTimeoutMs is 600 here and the shard waits limits.minSeqWaitMs (2000) for a minSeq: the router now waits for
  // both, on the quick msgpack path, the general one (JSON) and get (before: UNAVAILABLE "did not answer" at 600 ms).
  const nc = ctx.nc!;
  const minSeq = { calendar: 1e12 };
  const asks: [string, unknown, 'msgpack' | 'json'][] = [
    ['recall', { v: 1, domain: 'calendar', query: 'meetings', minSeq }, 'msgpack'],
    ['recall', { v: 1, domain: 'calendar', query: 'meetings', minSeq }, 'json'],
    ['get', { v: 1, factId: 'calendar:0000000002:0', minSeq }, 'msgpack'],
  ];
  for (const [op, body, encoding] of asks) {
    const h = headers();
    if (encoding === 'json') h.set('content-type', 'application/json');
    const m = await nc.request(memSubject(op), encodePayload(body, encoding), { timeout: 10_000, headers: h });
    const reply = decodePayload(m.data, encoding) as { error?: { code: string; message: string } };
    assert.is(reply.error?.code, 'TIMEOUT', `${op} ${encoding}: ${JSON.stringify(reply)}`);
    assert.match(reply.error!.message, /not applied within/);
  }
});

t.run();
