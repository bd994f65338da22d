/**
 * The table layout of a recall reply (decisions §28) against a real host on a real nats-server: a shard, a replica
 * read and a one-domain recall through the router answer `layout: "table"` with rows that hold the same facts as
 * the object layout (msgpack and JSON); a router merging several domains answers with objects; a request without
 * the field gets objects as before; an unknown layout is BAD_REQUEST; a request that knows the columns
 * (`knownColumns`) gets rows without their names; and the client, which asks for tables, gets the facts either way.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect as natsConnect, headers, type NatsConnection } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { connect, fromRecallReply, type RecallResult, type ShardmindClient } from '../../client/index.ts';
import {
  CONTENT_TYPE_HEADER,
  JSON_CONTENT_TYPE,
  RECALL_TABLE_COLUMNS,
  decodePayload,
  encodePayload,
  memSubject,
  replicaSubject,
  shardSubject,
  type Encoding,
  type RecallReply,
  type RecallTableReply,
} from '../../protocol/index.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';
import { NODE, oneMiniConfig } from './one-mini.ts';

interface Ctx {
  nats: NatsServerProcess;
  hosts: HostCluster;
  nc: NatsConnection;
  client: ShardmindClient;
}

const layout = suite<Ctx>('recall layouts');

layout.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  try {
    ctx.hosts = await startHosts({ config: oneMiniConfig(ctx.nats.url) });
    ctx.nc = await natsConnect({ servers: ctx.nats.url });
    ctx.client = await connect({ connection: ctx.nc, agent: 'agent-a', node: NODE, direct: true });
    await ctx.client.remember(
      { text: 'The quarterly report goes out as a PDF attachment', subject: 'user', predicate: 'report_format', object: { entity: 'pdf' } },
      { domain: 'email' },
    );
    await ctx.client.remember({ text: 'The quarterly report attachment is sent to Bob by email', subject: 'bob', predicate: 'receives', object: 'the report' }, { domain: 'email' });
    await ctx.client.remember({ text: 'The quarterly report draft lives in the shared drive' }, { domain: 'files' });
  } catch (err) {
    await ctx.nc?.close();
    await ctx.hosts?.stop();
    await ctx.nats.destroy();
    throw err;
  }
});

layout.after(async (ctx) => {
  await ctx.client?.close();
  await ctx.nc?.close();
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

/** One raw request in `encoding`, decoded. */
async function ask(nc: NatsConnection, subject: string, body: object, encoding: Encoding = 'msgpack'): Promise<Record<string, unknown>> {
  const h = headers();
  if (encoding === 'json') h.set(CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE);
  const reply = await nc.request(subject, encodePayload(body, encoding), { timeout: 10_000, headers: h });
  return decodePayload(reply.data, encoding) as Record<string, unknown>;
}

const query = { v: 1, agent: 'agent-b', query: 'quarterly report attachment', limit: 10 };

/** A recall result without what decays between two asks (effective confidence and score, checked apart). */
function timeless(r: RecallResult): object {
  return { ...r, facts: r.facts.map(({ effectiveConfidence: _e, score: _s, ...f }) => f) };
}

function assertCloseScores(a: RecallResult, b: RecallResult): void {
  a.facts.forEach((f, i) => {
    assert.ok(Math.abs(f.score - b.facts[i]!.score) < 1e-6, `score ${f.score} vs ${b.facts[i]!.score}`);
    assert.ok(Math.abs(f.effectiveConfidence - b.facts[i]!.effectiveConfidence) < 1e-6);
  });
}

layout('a shard answers layout "table" with rows holding the same facts as objects, in msgpack and JSON', async (ctx) => {
  for (const encoding of ['msgpack', 'json'] as const) {
    const objects = await ask(ctx.nc, shardSubject('email', 'recall'), query, encoding);
    const table = await ask(ctx.nc, shardSubject('email', 'recall'), { ...query, layout: 'table' }, encoding);
    assert.ok(Array.isArray(objects['facts']) && objects['facts'].length === 2, 'objects by default, as before');
    assert.is(table['facts'], undefined);
    assert.ok(Array.isArray(table['rows']) && table['rows'].length === 2, `${encoding}: two rows`);
    const fromTable = fromRecallReply(table as unknown as RecallTableReply);
    const fromObjects = fromRecallReply(objects as unknown as RecallReply);
    assert.equal(timeless(fromTable), timeless(fromObjects));
    assertCloseScores(fromTable, fromObjects);
  }
});

layout('a request that knows the columns gets rows without their names, direct, through the router and from a replica', async (ctx) => {
  const known = { ...query, layout: 'table', knownColumns: RECALL_TABLE_COLUMNS.length };
  for (const encoding of ['msgpack', 'json'] as const) {
    const named = await ask(ctx.nc, shardSubject('email', 'recall'), { ...query, layout: 'table' }, encoding);
    const bare = await ask(ctx.nc, shardSubject('email', 'recall'), known, encoding);
    assert.ok(Array.isArray(named['columns']));
    assert.is(bare['columns'], undefined, `${encoding}: no columns`);
    assert.equal((bare['rows'] as unknown[][]).map((r) => r[0]), (named['rows'] as unknown[][]).map((r) => r[0]));
    const fromBare = fromRecallReply(bare as unknown as RecallTableReply);
    const fromNamed = fromRecallReply(named as unknown as RecallTableReply);
    assert.equal(timeless(fromBare), timeless(fromNamed));
  }
  const routed = await ask(ctx.nc, memSubject('recall'), { ...known, domain: 'email' });
  assert.ok(Array.isArray(routed['rows']) && routed['columns'] === undefined, 'the router hands the field on to the shard');
  const replica = await ask(ctx.nc, replicaSubject('email', 'recall'), { ...known, maxStaleMs: 5_000 });
  assert.ok(Array.isArray(replica['rows']) && replica['columns'] === undefined && replica['servedBy'] === NODE);
  // A count that is not the shard's whole list (a client that knows fewer or more columns) gets the names.
  for (const other of [0, RECALL_TABLE_COLUMNS.length - 1, RECALL_TABLE_COLUMNS.length + 1]) {
    const reply = await ask(ctx.nc, shardSubject('email', 'recall'), { ...known, knownColumns: other });
    assert.equal(reply['columns'], [...RECALL_TABLE_COLUMNS], `knownColumns ${other}`);
  }
  const bad = await ask(ctx.nc, shardSubject('email', 'recall'), { ...known, knownColumns: 'all' });
  assert.is((bad['error'] as { code: string }).code, 'BAD_REQUEST');
  assert.match((bad['error'] as { message: string }).message, /knownColumns/);
});

layout('a replica read answers a table too, with who served it', async (ctx) => {
  const table = await ask(ctx.nc, replicaSubject('email', 'recall'), { ...query, maxStaleMs: 5_000, layout: 'table' });
  assert.ok(Array.isArray(table['rows']) && table['rows'].length === 2);
  assert.is(table['servedBy'], NODE);
  assert.is(typeof table['staleMs'], 'number');
});

layout('through the router: one domain comes back as the shard wrote it (a table), several merge as objects', async (ctx) => {
  const one = await ask(ctx.nc, memSubject('recall'), { ...query, domain: 'email', layout: 'table' });
  assert.ok(Array.isArray(one['rows']) && one['rows'].length === 2, 'the shard answered the agent');
  const merged = await ask(ctx.nc, memSubject('recall'), { ...query, domain: ['email', 'files'], layout: 'table' });
  assert.is(merged['rows'], undefined);
  const facts = fromRecallReply(merged as unknown as RecallReply).facts;
  assert.equal(new Set(facts.map((f) => f.domain)), new Set(['email', 'files']));
});

layout('an unknown layout is BAD_REQUEST naming the field', async (ctx) => {
  const reply = await ask(ctx.nc, shardSubject('email', 'recall'), { ...query, layout: 'rows' });
  const error = reply['error'] as { code: string; message: string };
  assert.is(error.code, 'BAD_REQUEST');
  assert.match(error.message, /layout/);
});

layout('the client asks for tables and gets the same facts direct, through the router and from a replica', async (ctx) => {
  const direct = await ctx.client.recall({ query: query.query, domain: 'email' });
  const routed = await ctx.client.recall({ query: query.query, domain: 'email', direct: false });
  const replica = await ctx.client.recall({ query: query.query, domain: 'email', maxStaleMs: 5_000 });
  assert.is(direct.facts.length, 2);
  assert.ok(direct.facts.every((f) => f.validFrom instanceof Date && f.domain === 'email' && f.source.agent === 'agent-a'));
  assert.equal(direct.facts.find((f) => f.subject === 'user')?.object, { entity: 'pdf' });
  const ids = (r: typeof direct): string[] => r.facts.map((f) => f.id).sort();
  assert.equal(ids(routed), ids(direct));
  assert.equal(ids(replica), ids(direct));
});

layout.run();
