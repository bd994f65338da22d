/**
 * `recall_batch` (`sm.shard.<domain>.recall_batch`) on a real host and a real nats-server, over raw NATS requests:
 * each item is answered as a lone recall of it would be (same facts, its own layout, its own `minSeq` wait), a bad
 * item fails only itself and names its index, a bad batch fails as a whole and changes nothing, the JSON form works,
 * a shard with no leader refuses the whole batch retryably, and a reply over the server's `max_payload` is answered
 * TOO_LARGE instead of being dropped.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect as natsConnect, headers, type NatsConnection } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { connect, fromRecallReply, type ShardmindClient } from '../../client/index.ts';
import type { ClusterConfigInput } from '../../config/index.ts';
import { ErrorCode, RECALL_TABLE_COLUMNS, decodePayload, encodePayload, logStream, shardSubject, type RecallReply, type RecallTableReply } from '../../protocol/index.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';
import { DOMAINS, NODE, oneMiniConfig } from './one-mini.ts';

interface Ctx {
  nats: NatsServerProcess;
  hosts: HostCluster;
  nc: NatsConnection;
  client: ShardmindClient;
}

type Body = Record<string, any>;

/** One Mini leading calendar, email and files; `late` is placed on mini-2, which this suite never starts. */
function config(url: string): ClusterConfigInput {
  const base = oneMiniConfig(url);
  return {
    ...base,
    nodes: [...base.nodes, { name: 'mini-2', nats: [url] }],
    domains: [...base.domains, { name: 'late', description: 'late memory', seeds: ['late things'] }],
    placement: { ...base.placement, late: { leader: 'mini-2', standbys: [] } },
  };
}

const test = suite<Ctx>('recall_batch on a real host');

test.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  try {
    ctx.hosts = await startHosts({ config: config(ctx.nats.url), nodes: [NODE] });
    ctx.nc = await natsConnect({ servers: ctx.nats.url });
    ctx.client = await connect({ connection: ctx.nc, agent: 'seeder', node: NODE, direct: true });
    const topics = ['inbox filters for newsletters', 'attachment format pdf or link', 'meeting with dana on tuesday', 'invoice reminders every month', 'quarterly report drafts'];
    await ctx.client.rememberMany(
      Array.from({ length: 40 }, (_, i) => ({ text: `Note ${i} about ${topics[i % topics.length]} and item${i}`, subject: `person${i % 7}`, predicate: 'mentions', object: `thing${i}` })),
      { domain: 'email' },
    );
  } catch (err) {
    await ctx.nc?.close();
    await ctx.hosts?.stop();
    await ctx.nats.destroy();
    throw err;
  }
});

test.after(async (ctx) => {
  await ctx.client?.close();
  await ctx.nc?.close();
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

async function ask(nc: NatsConnection, subject: string, body: unknown, json = false): Promise<Body> {
  const encoding = json ? 'json' : 'msgpack';
  const h = headers();
  if (json) h.set('content-type', 'application/json');
  const msg = await nc.request(subject, encodePayload(body, encoding), { timeout: 8_000, headers: h });
  if (json) assert.is(msg.headers?.get('content-type'), 'application/json', 'a JSON request is answered in JSON');
  return decodePayload(msg.data, encoding) as Body;
}

/** What must be equal between two answers to the same recall (scores and decayed confidences move with the clock). */
function factsOf(reply: Body): string[] {
  return fromRecallReply(reply as RecallReply | RecallTableReply).facts.map((f) => `${f.id}|${f.text}|${f.subject}|${f.predicate}|${JSON.stringify(f.object)}|${f.confidence}|${f.status}|${f.source.agent}`);
}

async function lastSeq(nc: NatsConnection, domain: string): Promise<number> {
  const jsm = await nc.jetstreamManager({ checkAPI: false });
  return (await jsm.streams.info(logStream(domain))).state.last_seq;
}

const QUERIES = ['inbox filters', 'attachment format pdf', 'meeting with dana', 'invoice reminders', 'quarterly report', 'nothing like this zzqx'];

test('each result is what a lone recall of the item answers: same facts, same layout', async (ctx) => {
  const items = QUERIES.map((query, i) => ({
    // Three shapes: the SDK's (table, columns known), a table with its column names, objects (no layout) without v.
    ...(i % 3 === 2 ? {} : { v: 1 }),
    query,
    limit: 5,
    ...(i % 3 === 0 ? { layout: 'table', knownColumns: RECALL_TABLE_COLUMNS.length } : i % 3 === 1 ? { layout: 'table' } : {}),
  }));
  const batch = await ask(ctx.nc, shardSubject('email', 'recall_batch'), { v: 1, recalls: items });
  assert.is(batch['v'], 1);
  assert.is(batch['results'].length, items.length);
  let found = 0;
  for (const [i, item] of items.entries()) {
    const lone = await ask(ctx.nc, shardSubject('email', 'recall'), { ...item, v: 1 });
    const got = batch['results'][i] as Body;
    assert.equal(Object.keys(got), Object.keys(lone), `item ${i}: the same reply fields`);
    assert.equal(got['domains'], ['email']);
    assert.equal(factsOf(got), factsOf(lone), `item ${i} (${item.query})`);
    found += factsOf(got).length;
  }
  assert.ok(found >= 10, `the queries found facts (${found})`);
  assert.ok(batch['results'][0]['rows'] && !batch['results'][0]['columns'], 'knownColumns: rows without names');
  assert.ok(batch['results'][1]['columns'], 'a table without knownColumns names its columns');
  assert.ok(batch['results'][2]['facts'], 'no layout: objects');
});

test('the JSON form: a JSON batch is answered in JSON, item by item as lone JSON recalls', async (ctx) => {
  const items = [{ query: 'meeting with dana', layout: 'table' }, { query: 'invoice reminders' }, { query: 'x', limit: 0 }];
  const batch = await ask(ctx.nc, shardSubject('email', 'recall_batch'), { v: 1, recalls: items }, true);
  assert.is(batch['results'].length, 3);
  for (const i of [0, 1]) assert.equal(factsOf(batch['results'][i]), factsOf(await ask(ctx.nc, shardSubject('email', 'recall'), { v: 1, ...items[i] }, true)), `item ${i}`);
  assert.ok(batch['results'][0]['columns'] && batch['results'][0]['rows'].length > 0);
  assert.is(batch['results'][2]['error']['code'], ErrorCode.BAD_REQUEST);
  assert.ok(batch['results'][2]['error']['message'].startsWith('recalls[2].limit:'), batch['results'][2]['error']['message']);
});

test('a bad item fails only itself, its error naming its index and field', async (ctx) => {
  const recalls = [
    { query: 'attachment format pdf' },
    { query: 'x', limit: 'ten' },
    { subject: 7 },
    'not a recall',
    { v: 2, query: 'y' },
    { query: 'z', layout: 'grid' },
    {},
    { query: 'z', knownColumns: -1 },
    { query: 'quarterly report', minSeq: { email: -3 } },
  ];
  const reply = await ask(ctx.nc, shardSubject('email', 'recall_batch'), { v: 1, recalls });
  const results = reply['results'] as Body[];
  assert.is(results.length, recalls.length);
  assert.ok(factsOf(results[0]!).length > 0, 'the good item is answered');
  const expected = ['recalls[1].limit:', 'recalls[2].subject:', 'recalls[3]:', 'recalls[4].v:', 'recalls[5].layout:', 'recalls[6].query:', 'recalls[7].knownColumns:', 'recalls[8].minSeq.email:'];
  for (const [k, prefix] of expected.entries()) {
    const e = results[k + 1]!['error'];
    assert.is(e?.code, ErrorCode.BAD_REQUEST, JSON.stringify(results[k + 1]));
    assert.is(e.retryable, false);
    assert.ok(e.message.startsWith(prefix), `${e.message} should start with ${prefix}`);
  }
});

test('a bad batch fails as a whole (BAD_REQUEST, TOO_LARGE) and changes nothing', async (ctx) => {
  const before = await Promise.all(DOMAINS.map((d) => lastSeq(ctx.nc, d)));
  const bad: [unknown, string][] = [
    [{ v: 1, recalls: [] }, 'recalls: must be a list of 1 to 64'],
    [{ v: 1, recalls: Array.from({ length: 65 }, () => ({ query: 'x' })) }, 'recalls: must be a list of 1 to 64 recall requests, got 65 items'],
    [{ v: 1, recalls: { query: 'x' } }, 'recalls:'],
    [{ v: 1 }, 'recalls:'],
    [{ v: 2, recalls: [{ query: 'x' }] }, 'v:'],
    [['not', 'an', 'object'], 'body:'],
  ];
  for (const [body, prefix] of bad) {
    for (const json of [false, true]) {
      const reply = await ask(ctx.nc, shardSubject('email', 'recall_batch'), body, json);
      assert.is(reply['error']?.code, ErrorCode.BAD_REQUEST, JSON.stringify(reply));
      assert.ok(reply['error'].message.startsWith(prefix), `${reply['error'].message} should start with ${prefix}`);
      assert.is(reply['results'], undefined);
    }
  }
  // Over the hosts' 64 KiB request limit: refused before it is decoded.
  const huge = { v: 1, recalls: Array.from({ length: 5 }, (_, i) => ({ query: `${'long query words '.repeat(900)} ${i}` })) };
  const tooLarge = await ask(ctx.nc, shardSubject('email', 'recall_batch'), huge);
  assert.is(tooLarge['error']?.code, ErrorCode.TOO_LARGE);
  assert.ok(tooLarge['error'].message.includes('the limit is 65536 bytes'), tooLarge['error'].message);
  assert.equal(await Promise.all(DOMAINS.map((d) => lastSeq(ctx.nc, d))), before, 'nothing was written');
  assert.ok(factsOf(await ask(ctx.nc, shardSubject('email', 'recall'), { v: 1, query: 'inbox filters' })).length > 0, 'the shard still answers');
});

test('read-your-writes: an item waits for its minSeq; one whose wait runs out has TIMEOUT in its slot, the others are answered', async (ctx) => {
  const seq = (await lastSeq(ctx.nc, 'email')) + 1;
  // The remember is not awaited: the batch reaches the leader before the write is applied, so its first item waits.
  const written = ctx.nc.request(shardSubject('email', 'remember'), encodePayload({ v: 1, agent: 'writer', opId: 'ryw-1', fact: { text: 'The zanzibar quokka ledger moved to the blue folder' } }, 'msgpack'), { timeout: 8_000 });
  const started = Date.now();
  const reply = await ask(ctx.nc, shardSubject('email', 'recall_batch'), {
    v: 1,
    recalls: [
      { query: 'zanzibar quokka ledger', minSeq: { email: seq } },
      { query: 'zanzibar quokka ledger', minSeq: { email: seq + 1000 } },
      { query: 'meeting with dana', minSeq: { calendar: 10_000 } },
    ],
  });
  const waitedMs = Date.now() - started;
  const remembered = decodePayload((await written).data, 'msgpack') as Body;
  assert.is(remembered['seq'], seq, 'the write landed at the sequence the item waited for');
  const [mine, ahead, other] = reply['results'] as Body[];
  assert.ok(factsOf(mine!).some((f) => f.startsWith(`${remembered['factId']}|`)), `the item sees the write: ${JSON.stringify(mine)}`);
  assert.ok(mine!['seqs']['email'] >= seq);
  assert.is(ahead!['error']?.code, ErrorCode.TIMEOUT, JSON.stringify(ahead));
  assert.is(ahead!['error'].retryable, true);
  assert.ok(waitedMs >= 250, `the batch waited for the item's bounded wait (${waitedMs} ms; minSeqWaitMs is 300)`);
  assert.ok(factsOf(other!).length > 0, 'another domain in minSeq is not waited for, as in a lone recall');
});

test('no leader for the shard: the whole batch is refused with a retryable NOT_LEADER', async (ctx) => {
  // The hosts' shard guard says NOT_LEADER once it has listened a lease (1.5 s) for a leader without hearing one;
  // before that it stays silent (it cannot tell yet), and a request times out.
  let reply: Body | undefined;
  for (const deadline = Date.now() + 10_000; reply === undefined && Date.now() < deadline; ) {
    const body = encodePayload({ v: 1, recalls: [{ query: 'x' }, { query: 'y' }] }, 'msgpack');
    reply = await ctx.nc.request(shardSubject('late', 'recall_batch'), body, { timeout: 500 }).then((m) => decodePayload(m.data, 'msgpack') as Body, () => undefined);
  }
  assert.ok(reply, 'answered within 10 s');
  assert.is(reply!['error']?.code, ErrorCode.NOT_LEADER, JSON.stringify(reply));
  assert.is(reply!['error'].retryable, true);
});

test('a reply over the server\'s max_payload is answered TOO_LARGE, not dropped; each item alone still fits', async (ctx) => {
  // 40 facts of ~15 KB: one recall of them is ~600 KB, two in one reply are over nats-server's 1 MiB.
  const text = (i: number): string => `Bulky archive record ${i}: ${'ledger entry with many words '.repeat(500)}`;
  const out = await ctx.client.rememberMany(Array.from({ length: 40 }, (_, i) => ({ text: text(i) })), { domain: 'files' });
  assert.ok(out.every((r) => !(r instanceof Error)), 'the bulky facts are stored');
  const item = { query: 'bulky archive record', limit: 40, layout: 'table', knownColumns: RECALL_TABLE_COLUMNS.length };
  for (const json of [false, true]) {
    const reply = await ask(ctx.nc, shardSubject('files', 'recall_batch'), { v: 1, recalls: [item, item] }, json);
    assert.is(reply['error']?.code, ErrorCode.TOO_LARGE, JSON.stringify(reply).slice(0, 300));
    assert.ok(reply['error'].message.startsWith('reply: '), reply['error'].message);
    assert.ok(reply['error'].message.includes('max_payload of 1048576 bytes'), reply['error'].message);
  }
  const one = await ask(ctx.nc, shardSubject('files', 'recall_batch'), { v: 1, recalls: [item] });
  assert.is(factsOf(one['results'][0]).length, 40, 'a batch of one of them fits');
});

test.run();
