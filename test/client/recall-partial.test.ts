/**
 * `partial` on the wire (decisions §76): a recall whose store answer was cut by a bound on its work says so, in every
 * form a reply takes — the shard's msgpack and JSON replies in both layouts, each `recall_batch` result, the router's
 * forward of one shard's reply and its merge of several (partial if any part was), and the SDK's `RecallResult` —
 * and a complete answer does not carry the field at all. And the busy-subject case end to end: the user's old rule
 * found behind 60 newer facts about the user. A real host on a real nats-server, raw NATS requests beside the SDK.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect as natsConnect, headers, type NatsConnection } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { connect, type ShardmindClient } from '../../client/index.ts';
import { decodePayload, encodePayload, memSubject, shardSubject } from '../../protocol/index.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';
import { NODE, oneMiniConfig } from './one-mini.ts';

interface Ctx {
  nats: NatsServerProcess;
  hosts: HostCluster;
  nc: NatsConnection;
  client: ShardmindClient;
}

type Body = Record<string, any>;

const test = suite<Ctx>('recall partial on the wire');

/** "standup" is in 100 notes of other people: more than the 96 mentions a busy subject's query looks at. */
const CUT = { subject: 'user', query: 'standup' };
/** The user's rule, behind 60 newer facts about the user, named by words with few mentions: found, complete. */
const RULE = { subject: 'user', query: 'meetings before 10' };

test.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  try {
    ctx.hosts = await startHosts({ config: oneMiniConfig(ctx.nats.url), nodes: [NODE] });
    ctx.nc = await natsConnect({ servers: ctx.nats.url });
    ctx.client = await connect({ connection: ctx.nc, agent: 'seeder', node: NODE });
    const domain = 'calendar';
    await ctx.client.remember({ text: 'The user never takes meetings before 10', subject: 'user', predicate: 'schedule_rule', object: 'no-early-meetings' }, { domain });
    // In order: every fact about the user is newer than the rule, and "standup" once in the user's own facts.
    const facts = Array.from({ length: 60 }, (_, i) => ({ text: i === 0 ? 'user skipped the standup' : `user likes dish ${i}`, subject: 'user', predicate: 'likes', object: `dish-${i}` }));
    for (const r of await ctx.client.rememberMany(facts, { domain, direct: true })) assert.not.instance(r, Error);
    const notes = Array.from({ length: 100 }, (_, i) => ({ text: `standup note ${i}`, subject: `person-${i}`, predicate: 'likes', object: `note-${i}` }));
    for (const r of await ctx.client.rememberMany(notes, { domain, direct: true })) assert.not.instance(r, Error);
  } catch (err) {
    await ctx.client?.close();
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

async function ask(nc: NatsConnection, subject: string, body: unknown, json: boolean): Promise<Body> {
  const encoding = json ? 'json' : 'msgpack';
  const h = headers();
  if (json) h.set('content-type', 'application/json');
  const msg = await nc.request(subject, encodePayload(body, encoding), { timeout: 8_000, headers: h });
  const reply = decodePayload(msg.data, encoding) as Body;
  assert.is(reply['error'], undefined, JSON.stringify(reply['error']));
  return reply;
}

const objectsOf = (reply: Body): unknown[] => (reply['rows'] !== undefined ? (reply['rows'] as unknown[][]).map((r) => r[4]) : (reply['facts'] as Body[]).map((f) => f['object']));

test('the shard says partial in msgpack and JSON, objects and table, only when cut', async ({ nc }) => {
  for (const json of [false, true]) {
    for (const layout of ['objects', 'table']) {
      const how = `${json ? 'json' : 'msgpack'} ${layout}`;
      const cut = await ask(nc, shardSubject('calendar', 'recall'), { v: 1, agent: 'a', layout, ...CUT }, json);
      assert.is(cut['partial'], true, how);
      const complete = await ask(nc, shardSubject('calendar', 'recall'), { v: 1, agent: 'a', layout, ...RULE }, json);
      assert.ok(!('partial' in complete), `${how}: ${JSON.stringify(Object.keys(complete))}`);
      assert.is(objectsOf(complete)[0], 'no-early-meetings', how);
    }
  }
});

test('each recall_batch result says partial for itself', async ({ nc }) => {
  for (const json of [false, true]) {
    const reply = await ask(nc, shardSubject('calendar', 'recall_batch'), { v: 1, agent: 'a', recalls: [{ ...CUT }, { ...RULE, layout: 'table' }, { ...CUT, layout: 'table' }] }, json);
    const results = reply['results'] as Body[];
    assert.is(results[0]!['partial'], true);
    assert.ok(!('partial' in results[1]!));
    assert.is(objectsOf(results[1]!)[0], 'no-early-meetings');
    assert.is(results[2]!['partial'], true);
  }
});

test('the router forwards one shard\'s partial and merges several: partial if any part was', async ({ nc }) => {
  for (const json of [false, true]) {
    const one = await ask(nc, memSubject('recall'), { v: 1, agent: 'a', domain: 'calendar', ...CUT }, json);
    assert.is(one['partial'], true);
    const merged = await ask(nc, memSubject('recall'), { v: 1, agent: 'a', domain: ['calendar', 'email', 'files'], ...CUT }, json);
    assert.equal(merged['domains'], ['calendar', 'email', 'files']);
    assert.is(merged['partial'], true, 'calendar was cut; email and files were not');
    const complete = await ask(nc, memSubject('recall'), { v: 1, agent: 'a', domain: ['calendar', 'email'], ...RULE }, json);
    assert.ok(!('partial' in complete));
    assert.is(objectsOf(complete)[0], 'no-early-meetings');
  }
});

test('the SDK\'s RecallResult carries partial through the router, fanned out and direct', async ({ client }) => {
  for (const routing of [{ domain: 'calendar' }, { domain: ['calendar', 'files'] }, { domain: 'calendar', direct: true }]) {
    const cut = await client.recall({ ...CUT, ...routing });
    assert.is(cut.partial, true, JSON.stringify(routing));
    const complete = await client.recall({ ...RULE, ...routing });
    assert.is(complete.partial, undefined, JSON.stringify(routing));
    assert.is(complete.facts[0]?.object, 'no-early-meetings');
  }
  // Concurrent direct recalls travel in one recall_batch: each keeps its own.
  const [a, b] = await Promise.all([client.recall({ ...CUT, domain: 'calendar', direct: true }), client.recall({ ...RULE, domain: 'calendar', direct: true })]);
  assert.is(a.partial, true);
  assert.is(b.partial, undefined);
});

test.run();
