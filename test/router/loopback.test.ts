/**
 * The router inside a host asks the shards this host leads through the connection's loopback — no message on
 * `sm.shard.*` — with the wire's semantics (validation, read-your-writes, error codes), and goes over NATS again the
 * moment a shard stops serving here. A real nats-server, a real in-process host (LMDB in a temp dir) running the
 * router as its service, a spy connection counting what crosses `sm.shard.>`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, type NatsConnection } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { Host } from '../../actors/index.ts';
import { resolveConfig } from '../../config/index.ts';
import { decodePayload, encodePayload, memSubject, shardSubject } from '../../protocol/index.ts';
import { startRouter } from '../../router/index.ts';
import { openShardStore } from '../../shards/index.ts';
import { NODE, oneMiniConfig } from '../client/one-mini.ts';

interface Ctx {
  nats?: NatsServerProcess;
  dir?: string;
  host?: Host;
  client?: NatsConnection;
  spy?: NatsConnection;
  seen: string[];
}

const t = suite<Ctx>('router loopback', { seen: [] });

async function ask(nc: NatsConnection, subject: string, body: unknown): Promise<Record<string, any>> {
  const msg = await nc.request(subject, encodePayload(body, 'msgpack'), { timeout: 10_000 });
  return decodePayload(msg.data, 'msgpack') as Record<string, any>;
}

t.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  ctx.dir = mkdtempSync(join(tmpdir(), 'shardmind-loopback-'));
  const config = resolveConfig({ ...oneMiniConfig(ctx.nats.url), dataDir: ctx.dir });
  ctx.host = new Host({
    config,
    node: NODE,
    openStore: openShardStore,
    services: [({ nc, config: c, node }) => startRouter(nc, c, { node, log: () => {} })],
    log: () => {},
  });
  await ctx.host.start();
  await ctx.host.whenReady();
  ctx.client = await connect({ servers: ctx.nats.url });
  ctx.spy = await connect({ servers: ctx.nats.url });
  ctx.spy.subscribe('sm.shard.>', { callback: (_e, m) => void ctx.seen.push(m.subject) });
  await ctx.spy.flush();
  // The router starts in the background after the shards: wait until it answers.
  for (const deadline = Date.now() + 20_000; ; ) {
    const r = await ask(ctx.client, memSubject('recall'), { v: 1, query: 'probe', domain: 'email' }).catch(() => undefined);
    if (r && !r['error']) break;
    if (Date.now() > deadline) throw new Error(`the router did not answer: ${JSON.stringify(r)}`);
    await new Promise((res) => setTimeout(res, 50));
  }
});

t.after(async (ctx) => {
  await ctx.client?.close();
  await ctx.spy?.close();
  await ctx.host?.drain();
  await ctx.nats?.destroy();
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

t('a remember and a read-your-writes recall through the router never cross sm.shard.*', async (ctx) => {
  ctx.seen.length = 0;
  const written = await ask(ctx.client!, memSubject('remember'), {
    v: 1,
    agent: 'a',
    domain: 'email',
    opId: 'loopback-1',
    fact: { text: 'The user files receipts under finance', subject: 'user', predicate: 'files_receipts_under', object: 'finance' },
  });
  assert.is(written['status'], 'created', JSON.stringify(written));
  const recalled = await ask(ctx.client!, memSubject('recall'), {
    v: 1,
    query: 'receipts finance',
    domain: 'email',
    minSeq: { email: written['seq'] },
  });
  assert.equal(recalled['domains'], ['email']);
  assert.ok(recalled['seqs'].email >= written['seq']);
  assert.is(recalled['facts'][0]?.id, written['factId']);
  // The same opId again is the same write (dedup answered through the loopback too).
  const again = await ask(ctx.client!, memSubject('remember'), {
    v: 1,
    agent: 'a',
    domain: 'email',
    opId: 'loopback-1',
    fact: { text: 'The user files receipts under finance', subject: 'user', predicate: 'files_receipts_under', object: 'finance' },
  });
  assert.is(again['seq'], written['seq']);
  assert.is(again['duplicate'], true);
  // The shard's own errors come back unchanged: a get of a missing fact.
  const missing = await ask(ctx.client!, memSubject('get'), { v: 1, factId: 'email:00000000zz:0' });
  assert.is(missing['error']?.code, 'NOT_FOUND');
  await ctx.spy!.flush();
  assert.equal(ctx.seen, [], 'nothing went over sm.shard.*');

  // The spy does see shard traffic: a direct request is one message.
  const direct = await ask(ctx.client!, shardSubject('email', 'recall'), { v: 1, query: 'receipts' });
  assert.ok(Array.isArray(direct['facts']));
  await ctx.spy!.flush();
  assert.equal(ctx.seen, ['sm.shard.email.recall']);
});

t('a shard that stops leading here is asked over NATS again, and its refusal is the answer', async (ctx) => {
  ctx.seen.length = 0;
  ctx.host!.command('files', { type: 'STOP' });
  for (const deadline = Date.now() + 10_000; ctx.host!.status().shards.find((s) => s.domain === 'files')?.state !== 'stopped'; ) {
    if (Date.now() > deadline) throw new Error('files did not stop');
    await new Promise((res) => setTimeout(res, 25));
  }
  const reply = await ask(ctx.client!, memSubject('recall'), { v: 1, query: 'spreadsheets', domain: 'files' });
  assert.ok(['NOT_LEADER', 'UNAVAILABLE'].includes(reply['error']?.code), JSON.stringify(reply));
  assert.is(reply['error'].retryable, true);
  await ctx.spy!.flush();
  assert.ok(ctx.seen.includes('sm.shard.files.recall'), `the router asked over NATS: ${JSON.stringify(ctx.seen)}`);
});

t.run();
