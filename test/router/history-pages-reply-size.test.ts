/**
 * Two bounds on what one read may cost (review session 11b, findings 4 and 2), on a real nats-server with two
 * `shardmind host` processes (email led by mini-1, mini-2 its standby):
 * - `history` answers a page of `limit` facts (default 100) and a cursor, read no further than the page, so a busy
 *   subject neither stalls the leader past its lease nor builds a reply no server would carry;
 * - a reply over the server's `max_payload` (1 MiB) is answered TOO_LARGE, directly and through the router, where
 *   before it was dropped and the caller saw a TIMEOUT.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, headers, type NatsConnection } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import type { ClusterConfigInput } from '../../config/index.ts';
import { decodePayload, encodePayload } from '../../protocol/index.ts';
import shipped from '../../cluster.config.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';
import { leaderOf } from '../failover/fault-kit.ts';
import { connect as connectClient } from '../../client/index.ts';

interface Ctx {
  nats?: NatsServerProcess;
  hosts?: HostCluster;
  agent?: NatsConnection;
}

const test = suite<Ctx>('history pages and reply size');
const NODES = ['mini-1', 'mini-2'];
const HOT_FACTS = 5_000;
const BIG_FACTS = 100;
const BIG_TEXT_CHARS = 16_000;

function config(url: string): ClusterConfigInput {
  return {
    ...shipped,
    cluster: { name: 'history-pages' },
    nodes: NODES.map((name) => ({ name, nats: [url] })),
    placement: Object.fromEntries(shipped.domains.map((d) => [d.name, { leader: 'mini-1', standbys: ['mini-2'] }])),
    replication: { replicas: 1, leaseMs: 1500, heartbeatMs: 250 },
  };
}

type Body = Record<string, any>;

async function ask(nc: NatsConnection, subject: string, body: unknown, json = false): Promise<Body> {
  const encoding = json ? 'json' : 'msgpack';
  const h = headers();
  if (json) h.set('content-type', 'application/json');
  const msg = await nc.request(subject, encodePayload(body, encoding), { timeout: 8_000, headers: h });
  return decodePayload(msg.data, encoding) as Body;
}

/** Retries what the cluster refuses as retryable (a shard starting), as a client would, until a deadline. */
async function askOk(nc: NatsConnection, subject: string, body: unknown): Promise<Body> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await ask(nc, subject, body).catch((err: Error) => ({ error: { code: 'TIMEOUT', message: err.message, retryable: true } }));
    if (!r['error']) return r;
    if (!r['error'].retryable || Date.now() > deadline) assert.unreachable(`${subject}: ${JSON.stringify(r['error'])}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Words from a fixed generator: a long text that is still text (recall indexes its words). */
function longText(i: number): string {
  let x = i * 2654435761 + 1;
  const words = ['bigsubject'];
  let length = words[0]!.length;
  while (length < BIG_TEXT_CHARS - 12) {
    x = (x * 1103515245 + 12345) >>> 0;
    const w = `w${(x % 100_000).toString(36)}`;
    words.push(w);
    length += w.length + 1;
  }
  return words.join(' ').slice(0, BIG_TEXT_CHARS);
}

async function epochOfEmail(nc: NatsConnection): Promise<string> {
  const l = await leaderOf(nc, 'email', NODES);
  return l === undefined ? 'none' : `${l.node}@${l.view.epoch}`;
}

test.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  ctx.hosts = await startHosts({ config: config(ctx.nats.url) });
  ctx.agent = await connect({ servers: ctx.nats.url });
  for (let i = 0; i < HOT_FACTS; i += 250) {
    const items = Array.from({ length: 250 }, (_, j) => ({
      opId: `hot-${i + j}`,
      fact: { text: `hot subject note ${i + j} about topic${(i + j) % 97}`, subject: 'hot', predicate: 'note' },
    }));
    await askOk(ctx.agent, 'sm.shard.email.remember_batch', { v: 1, agent: 'test', items });
  }
  // Three 16 000-character facts fit one request under the 64 KiB payload limit.
  for (let i = 0; i < BIG_FACTS; i += 3) {
    const items = Array.from({ length: Math.min(3, BIG_FACTS - i) }, (_, j) => ({
      opId: `big-${i + j}`,
      fact: { text: longText(i + j), subject: 'big', predicate: 'note' },
    }));
    await askOk(ctx.agent, 'sm.shard.email.remember_batch', { v: 1, agent: 'test', items });
  }
});

test.after(async (ctx) => {
  await ctx.agent?.close();
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

test('history - a 5 000-fact subject answers a page of the default 100, and the cursor pages through all of it without a leadership change', async (ctx) => {
  const nc = ctx.agent!;
  const before = await epochOfEmail(nc);
  assert.is.not(before, 'none');
  const first = await askOk(nc, 'sm.shard.email.history', { v: 1, subject: 'hot', predicate: 'note' });
  assert.is(first['facts'].length, 100);
  assert.type(first['next'], 'number');
  const seen = new Set<string>(first['facts'].map((f: Body) => f['id']));
  // The newest 100 recorded: the last notes written.
  assert.ok(first['facts'].some((f: Body) => f['text'] === `hot subject note ${HOT_FACTS - 1} about topic${(HOT_FACTS - 1) % 97}`));
  let cursor: number | undefined = first['next'];
  let pages = 1;
  while (cursor !== undefined) {
    const page = await askOk(nc, 'sm.shard.email.history', { v: 1, subject: 'hot', predicate: 'note', limit: 1000, before: cursor });
    assert.ok(page['facts'].length <= 1000);
    for (const f of page['facts']) {
      assert.not.ok(seen.has(f['id']), `fact ${f['id']} on two pages`);
      seen.add(f['id']);
    }
    assert.ok(page['next'] === undefined || page['next'] < cursor, 'the cursor moves back');
    cursor = page['next'];
    pages++;
  }
  assert.is(seen.size, HOT_FACTS);
  assert.is(pages, 1 + Math.ceil((HOT_FACTS - 100) / 1000));
  assert.is(await epochOfEmail(nc), before, 'the leader kept its lease');
});

test('history - through the router: the page, its cursor, and a limit over 1000 refused naming the field and the bound', async (ctx) => {
  const nc = ctx.agent!;
  const page = await askOk(nc, 'sm.mem.history', { v: 1, subject: 'hot', predicate: 'note', domain: 'email', limit: 10 });
  assert.is(page['facts'].length, 10);
  assert.type(page['next'], 'number');
  const older = await askOk(nc, 'sm.mem.history', { v: 1, subject: 'hot', predicate: 'note', domain: 'email', limit: 10, before: page['next'] });
  assert.is(older['facts'].length, 10);
  const ids = new Set(page['facts'].map((f: Body) => f['id']));
  assert.not.ok(older['facts'].some((f: Body) => ids.has(f['id'])));
  for (const subject of ['sm.mem.history', 'sm.shard.email.history']) {
    const r = await ask(nc, subject, { v: 1, subject: 'hot', domain: 'email', limit: 5000 });
    assert.is(r['error']?.code, 'BAD_REQUEST', subject);
    assert.match(r['error'].message, /^limit: .*1\.\.1000/, subject);
  }
  const r = await ask(nc, 'sm.mem.history', { v: 1, subject: 'hot', limit: 10, before: page['next'] });
  assert.is(r['error']?.code, 'BAD_REQUEST');
  assert.match(r['error'].message, /^before: /);
});

test('history - the SDK pages with historyPage (router and direct) and history gives one page', async (ctx) => {
  for (const direct of [false, true]) {
    const client = await connectClient({ connection: ctx.agent!, agent: 'sdk', direct });
    try {
      const page = await client.historyPage('hot', 'note', { domain: 'email', limit: 300 });
      assert.is(page.facts.length, 300);
      assert.type(page.next, 'number');
      const older = await client.historyPage('hot', 'note', { domain: 'email', limit: 300, before: page.next! });
      assert.is(older.facts.length, 300);
      const newer = new Set(page.facts.map((f) => f.id));
      assert.not.ok(older.facts.some((f) => newer.has(f.id)), 'the older page holds other facts');
      assert.is((await client.history('hot', 'note', { domain: 'email' })).length, 100);
      const refused = await client.history('hot', 'note', { domain: 'email', limit: 1001 }).catch((err: Error & { code?: string }) => err);
      assert.is((refused as { code?: string }).code, 'BAD_REQUEST');
    } finally {
      await client.close();
    }
  }
});

test('reply size - a recall of 100 facts of 16 000 characters answers TOO_LARGE, directly and through the router, in either encoding', async (ctx) => {
  const nc = ctx.agent!;
  const body = { v: 1, agent: 'test', query: 'bigsubject', domain: 'email', limit: 100 };
  for (const [subject, json] of [
    ['sm.shard.email.recall', false],
    ['sm.shard.email.recall', true],
    ['sm.mem.recall', false],
    ['sm.mem.recall', true],
  ] as const) {
    const started = Date.now();
    const r = await ask(nc, subject, body, json);
    assert.is(r['error']?.code, 'TOO_LARGE', `${subject} json=${json}: ${JSON.stringify(r).slice(0, 200)}`);
    assert.is(r['error'].retryable, false);
    assert.match(r['error'].message, /^reply: \d+ bytes is over the server's max_payload of 1048576 bytes.*limit/);
    assert.ok(Date.now() - started < 5_000, 'answered, not timed out');
  }
  // A page that fits still answers.
  const fits = await askOk(nc, 'sm.shard.email.recall', { ...body, limit: 20 });
  assert.is(fits['facts'].length, 20);
  const history = await askOk(nc, 'sm.mem.history', { v: 1, subject: 'big', domain: 'email', limit: 50 });
  assert.is(history['facts'].length, 50);
  const tooBig = await ask(nc, 'sm.mem.history', { v: 1, subject: 'big', domain: 'email', limit: 100 });
  assert.is(tooBig['error']?.code, 'TOO_LARGE');
});

test.run();
