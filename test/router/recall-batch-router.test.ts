/**
 * `sm.mem.recall_batch` on a real host (its router) and a real nats-server, over raw NATS requests and through the
 * SDK: each result is what a lone `sm.mem.recall` of the item answers (classified, named, fanned out, by task, by
 * predicate, a replica read, with a floor), in msgpack and JSON; the parts bound for one shard go to it as one
 * `recall_batch`; a batch naming one domain goes to that shard whole; an item's failure (a bad field, an unknown
 * domain or task, a domain with no leader) stays in its slot, and a domain that fails is `missing` in the items that
 * asked others too; a bad envelope is refused as a whole; the SDK sends its concurrent routed recalls this way.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect as natsConnect, headers, type NatsConnection, type Subscription } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { connect, fromRecallReply, type ShardmindClient } from '../../client/index.ts';
import type { ClusterConfigInput } from '../../config/index.ts';
import { ErrorCode, RECALL_TABLE_COLUMNS, ROUTER_NODE_HEADER, decodePayload, encodePayload, memSubject, shardSubject, type RecallReply, type RecallTableReply } from '../../protocol/index.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';
import { NODE, oneMiniConfig } from '../client/one-mini.ts';

interface Ctx {
  nats: NatsServerProcess;
  hosts: HostCluster;
  nc: NatsConnection;
  seeder: ShardmindClient;
  task: string;
  seqs: Record<string, number>;
}

type Body = Record<string, any>;

/** One Mini leading calendar, email and files; `late` is led by mini-2, which this suite never starts. */
function config(url: string): ClusterConfigInput {
  const base = oneMiniConfig(url);
  return {
    ...base,
    nodes: [...base.nodes, { name: 'mini-2', nats: [url] }],
    domains: [...base.domains, { name: 'late', description: 'late memory', seeds: ['late things'] }],
    placement: { ...base.placement, late: { leader: 'mini-2', standbys: [] } },
    // A recall asking `late` waits this long for it: kept short so its tests are quick.
    router: { shardTimeoutMs: 800 },
  };
}

const test = suite<Ctx>('sm.mem.recall_batch');

test.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  try {
    ctx.hosts = await startHosts({ config: config(ctx.nats.url), nodes: [NODE] });
    ctx.nc = await natsConnect({ servers: ctx.nats.url });
    ctx.seeder = await connect({ connection: ctx.nc, agent: 'seeder', node: NODE, direct: true });
    const seeds: Record<string, string[]> = {
      email: ['inbox filters for newsletters', 'attachment format pdf or link', 'reply to the thread from dana'],
      calendar: ['meeting with dana on tuesday', 'dentist appointment next week', 'standup moved to ten'],
      files: ['quarterly report drafts folder', 'invoice scans in the archive', 'contract pdf in shared drive'],
    };
    for (const [domain, topics] of Object.entries(seeds)) {
      await ctx.seeder.rememberMany(
        Array.from({ length: 15 }, (_, i) => ({ text: `Note ${i} in ${domain}: ${topics[i % topics.length]} item${i}`, subject: i % 2 ? 'user' : `person${i % 5}`, predicate: 'mentions', object: `thing${i}` })),
        { domain },
      );
    }
    ctx.seqs = ctx.seeder.seqs();
    const routed = await connect({ connection: ctx.nc, agent: 'planner' });
    ctx.task = (await routed.task.begin('reply to the email from dana about the newsletter filters', { domain: 'email' })).task;
    await routed.close();
  } catch (err) {
    await ctx.seeder?.close();
    await ctx.nc?.close();
    await ctx.hosts?.stop();
    await ctx.nats.destroy();
    throw err;
  }
});

test.after(async (ctx) => {
  await ctx.seeder?.close();
  await ctx.nc?.close();
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

async function ask(nc: NatsConnection, subject: string, body: unknown, json = false): Promise<{ body: Body; node: string | undefined }> {
  const encoding = json ? 'json' : 'msgpack';
  const h = headers();
  if (json) h.set('content-type', 'application/json');
  const msg = await nc.request(subject, encodePayload(body, encoding), { timeout: 8_000, headers: h });
  if (json) assert.is(msg.headers?.get('content-type'), 'application/json', 'a JSON request is answered in JSON');
  return { body: decodePayload(msg.data, encoding) as Body, node: msg.headers?.get(ROUTER_NODE_HEADER) };
}

/** What must be equal between two answers to the same recall (scores and decayed confidences move with the clock). */
function factsOf(reply: Body): string[] {
  return fromRecallReply(reply as RecallReply | RecallTableReply).facts.map((f) => `${f.id}|${f.domain}|${f.text}|${f.subject}|${f.predicate}|${f.status}`);
}

/** A reply's shape and content, for comparing a batch's result with a lone recall's. */
function summary(reply: Body): Body {
  if (reply['error']) return { error: reply['error']['code'], retryable: reply['error']['retryable'] };
  return {
    keys: Object.keys(reply).sort(),
    domains: reply['domains'],
    facts: factsOf(reply),
    layout: reply['rows'] ? 'table' : 'objects',
    seqs: reply['seqs'],
    // Which domains failed; not how (`late` has no leader: a timeout until the guard has listened a lease, then NOT_LEADER).
    missing: (reply['missing'] ?? []).map((m: Body) => `${m.domain} ${m.retryable}`),
    classification: reply['classification']?.map((c: Body) => c.domain),
    partial: reply['partial'],
  };
}

/** Counts the requests each shard's leader gets on its recall subjects. */
async function spy(nc: NatsConnection, domains: readonly string[]): Promise<{ counts: Record<string, { recall: number; batch: number }>; stop(): void }> {
  const counts: Record<string, { recall: number; batch: number }> = {};
  const subs: Subscription[] = [];
  for (const d of domains) {
    const c = (counts[d] = { recall: 0, batch: 0 });
    subs.push(nc.subscribe(shardSubject(d, 'recall'), { callback: () => void c.recall++ }));
    subs.push(nc.subscribe(shardSubject(d, 'recall_batch'), { callback: () => void c.batch++ }));
  }
  await nc.flush();
  return { counts, stop: () => subs.forEach((s) => s.unsubscribe()) };
}

/** Recalls of every shape the router plans: classified, named (one, several, a table), by task, predicate, subject. */
function shapes(ctx: Ctx): Body[] {
  return [
    { query: 'meeting with dana on tuesday', limit: 5 },
    { query: 'attachment format pdf', domain: 'email', layout: 'table', knownColumns: RECALL_TABLE_COLUMNS.length },
    { query: 'attachment format pdf', domain: 'email', layout: 'table' },
    { query: 'invoice scans archive', domain: ['files', 'email'], limit: 4 },
    { query: 'newsletter filters', task: ctx.task, limit: 3 },
    { subject: 'user', limit: 6 },
    { subject: 'user', predicate: 'mentions', domain: 'calendar' },
    { query: 'dana', minSeq: ctx.seqs, limit: 8 },
    { query: 'report drafts', domain: 'files', maxStaleMs: 60_000 },
    { query: 'quarterly report drafts', maxStaleMs: 60_000 },
    { query: 'zzqx nothing like it' },
  ];
}

for (const json of [false, true]) {
  test(`${json ? 'JSON' : 'msgpack'}: each result is what a lone sm.mem.recall of the item answers`, async (ctx) => {
    const items = shapes(ctx);
    const s = await spy(ctx.nc, ['calendar', 'email', 'files']);
    const batch = await ask(ctx.nc, memSubject('recall_batch'), { v: 1, recalls: items }, json);
    s.stop();
    assert.is(batch.body['v'], 1);
    assert.is(batch.node, NODE, 'the router says it answered');
    assert.is(batch.body['results'].length, items.length);
    let found = 0;
    for (const [i, item] of items.entries()) {
      const lone = (await ask(ctx.nc, memSubject('recall'), { v: 1, ...item }, json)).body;
      const got = batch.body['results'][i] as Body;
      assert.equal(summary(got), summary(lone), `item ${i}: ${JSON.stringify(item)}`);
      found += factsOf(got).length;
    }
    assert.ok(found >= 30, `the recalls found facts (${found})`);
    // msgpack: an item naming one domain comes back as its shard wrote it, in the layout it asked for.
    if (!json) assert.ok(batch.body['results'][1]['rows'] && !batch.body['results'][1]['columns'] && batch.body['results'][2]['columns'], 'table layouts kept');
    else assert.ok(batch.body['results'][1]['facts'], 'JSON through the router: objects, as for a lone recall');
    // Each leader asked at most once as a batch (the replica reads go to sm.replica, not counted here).
    for (const [d, c] of Object.entries(s.counts)) assert.ok(c.batch <= 1, `${d}: ${JSON.stringify(c)}`);
    assert.is(s.counts['email']!.batch, 1, JSON.stringify(s.counts));
  });
}

test('a batch naming one domain goes to that shard whole, and is answered as the shard answers it', async (ctx) => {
  const items = [
    { query: 'inbox filters', domain: 'email', layout: 'table', knownColumns: RECALL_TABLE_COLUMNS.length },
    { query: 'reply to the thread', domain: 'email', limit: 3 },
    { subject: 'user', domain: 'email', minSeq: ctx.seqs },
    { query: 'x', domain: 'email', limit: 0 },
  ];
  const s = await spy(ctx.nc, ['email']);
  const routed = await ask(ctx.nc, memSubject('recall_batch'), { v: 1, recalls: items });
  s.stop();
  assert.equal(s.counts['email'], { recall: 0, batch: 1 });
  assert.is(routed.node, NODE, 'the shard copies the router header into its answer');
  const direct = (await ask(ctx.nc, shardSubject('email', 'recall_batch'), { v: 1, recalls: items })).body;
  assert.equal(routed.body['results'].map(summary), direct['results'].map(summary));
  assert.ok(factsOf(routed.body['results'][0]).length > 0);
  assert.is(routed.body['results'][3]['error']['code'], ErrorCode.BAD_REQUEST);
  assert.ok(routed.body['results'][3]['error']['message'].startsWith('recalls[3].limit:'), routed.body['results'][3]['error']['message']);
});

for (const json of [false, true]) {
  test(`${json ? 'JSON' : 'msgpack'}: an item's failure stays in its slot; a failed domain is missing where others answered`, async (ctx) => {
    const items: any[] = [
      { query: 'meeting with dana', domain: 'nowhere' },
      { query: 'meeting with dana', limit: 0 },
      { query: 'anything', task: 't-00000000-0000-4000-8000-000000000000' },
      { query: 'late things', domain: 'late' },
      { query: 'dentist appointment', domain: ['late', 'calendar'] },
      { query: 'dentist appointment', domain: 'calendar' },
      { v: 2, query: 'x' },
      'not a recall',
    ];
    const started = Date.now();
    const batch = (await ask(ctx.nc, memSubject('recall_batch'), { v: 1, recalls: items }, json)).body;
    const took = Date.now() - started;
    const r = batch['results'] as Body[];
    assert.is(r.length, items.length);
    const error = (i: number): Body => r[i]!['error'];
    assert.is(error(0)['code'], ErrorCode.UNKNOWN_DOMAIN);
    assert.ok(error(0)['message'].startsWith('recalls[0]: no domain "nowhere"'), error(0)['message']);
    assert.is(error(1)['code'], ErrorCode.BAD_REQUEST);
    assert.ok(error(1)['message'].startsWith('recalls[1].limit:'), error(1)['message']);
    assert.is(error(2)['code'], ErrorCode.NOT_FOUND);
    assert.ok(error(2)['message'].startsWith('recalls[2]: no task t-'), error(2)['message']);
    assert.ok(error(3)['retryable'], `no leader for late: retryable (${error(3)['code']})`);
    assert.equal(r[4]!['missing'].map((m: Body) => m.domain), ['late']);
    assert.ok(factsOf(r[4]!).length > 0 && factsOf(r[4]!).every((f) => f.includes('|calendar|')));
    assert.ok(factsOf(r[5]!).length > 0);
    assert.ok(error(6)['message'].startsWith('recalls[6].v:'), error(6)['message']);
    assert.ok(error(7)['message'].startsWith('recalls[7]:'), error(7)['message']);
    // Each as a lone recall: the same code, the same facts.
    for (const i of [0, 1, 2, 3, 4, 5]) {
      const lone = (await ask(ctx.nc, memSubject('recall'), { v: 1, ...items[i] }, json)).body;
      const [a, b] = [summary(r[i]!), summary(lone)];
      if (a['error']) assert.equal(a, b, `item ${i}`);
      else assert.equal(a['facts'], b['facts'], `item ${i}`);
    }
    assert.ok(took < 5_000, `the batch waited for late once (${took} ms)`);
  });
}

test('a bad envelope is refused as a whole and clearly, in msgpack and JSON', async (ctx) => {
  for (const json of [false, true]) {
    const refused = async (body: unknown): Promise<Body> => {
      const reply = (await ask(ctx.nc, memSubject('recall_batch'), body, json)).body;
      assert.not.ok(reply['results'], 'no results');
      return reply['error'];
    };
    for (const recalls of [undefined, 'x', [], Array.from({ length: 65 }, () => ({ query: 'x' }))]) {
      const e = await refused({ v: 1, recalls });
      assert.is(e['code'], ErrorCode.BAD_REQUEST);
      assert.ok(e['message'].startsWith('recalls: must be a list of 1 to 64 recall requests'), e['message']);
    }
    const v = await refused({ recalls: [{ query: 'x' }] });
    assert.is(v['code'], ErrorCode.BAD_REQUEST);
    assert.ok(v['message'].startsWith('v:'), v['message']);
    const big = await refused({ v: 1, recalls: Array.from({ length: 10 }, () => ({ query: 'word '.repeat(1_500) })) });
    assert.is(big['code'], ErrorCode.TOO_LARGE);
  }
  // 64 is allowed.
  const full = (await ask(ctx.nc, memSubject('recall_batch'), { v: 1, recalls: Array.from({ length: 64 }, (_, i) => ({ query: `dana item${i}`, limit: 2 })) })).body;
  assert.is(full['results'].length, 64);
  assert.ok(full['results'].every((r: Body) => Array.isArray(r['facts'])));
});

test('the SDK sends concurrent routed recalls as sm.mem.recall_batch, each caller getting its lone recall\'s answer', async (ctx) => {
  const counts = { recall: 0, batch: 0 };
  const subs = [
    ctx.nc.subscribe(memSubject('recall'), { callback: () => void counts.recall++ }),
    ctx.nc.subscribe(memSubject('recall_batch'), { callback: () => void counts.batch++ }),
  ];
  await ctx.nc.flush();
  const routed = await connect({ connection: ctx.nc, agent: 'agent-r' });
  const plain = await connect({ connection: ctx.nc, agent: 'agent-r', batchRecall: false });
  const queries = shapes(ctx).filter((q) => q['maxStaleMs'] === undefined && q['minSeq'] === undefined);
  const asQuery = (q: Body) => ({ query: q['query'], subject: q['subject'], predicate: q['predicate'], domain: q['domain'], task: q['task'], limit: q['limit'] });
  const together = await Promise.all(queries.map((q) => routed.recall(asQuery(q))));
  await ctx.nc.flush();
  subs.forEach((s) => s.unsubscribe());
  assert.equal(counts, { recall: 0, batch: 1 }, 'calls made in one tick: one request');
  for (const [i, q] of queries.entries()) {
    const alone = await plain.recall(asQuery(q));
    assert.equal(together[i]!.facts.map((f) => f.id), alone.facts.map((f) => f.id), JSON.stringify(q));
    assert.equal(together[i]!.domains, alone.domains);
  }
  await routed.close();
  await plain.close();
});

test.run();
