/**
 * A log whose JetStream store is full (nats-server's `max_file_store` used up by another stream): the leader's write
 * pipeline answers each write it cannot append with a coded UNAVAILABLE that says the log has no room, keeps its
 * place in the log instead of asking for a resync, and appends again once room is made — a follower replaying the
 * log afterwards finds an unbroken chain. Through a real host and its router: the agent's remember gets that error,
 * the shard keeps leading and answering reads, and takes writes again once room is made (decisions §66).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, headers, type NatsConnection } from 'nats';
import { freePort, natsServerConfig, NatsServerProcess, waitForJetStream } from '../../cli/index.ts';
import { ensureLogStream, entryHash, PREV_HEADER, WritePipeline, type PipelineBreak } from '../../actors/index.ts';
import { decodePayload, encodePayload, ErrorCode, logStream, logSubject, memSubject, ShardmindError } from '../../protocol/index.ts';
import { openShardStore, type AssertEntry, type ShardStore } from '../../shards/index.ts';
import { startHosts } from '../harness/hosts.ts';
import { routerReady } from '../harness/router-ready.ts';
import { oneMiniConfig } from '../client/one-mini.ts';

interface Ctx {
  server?: NatsServerProcess;
  nc?: NatsConnection;
  dir?: string;
  store?: ShardStore;
}

const full = suite<Ctx>('log full', {});

/** Small enough to fill in a moment, large enough for the log's own first entries. */
const MAX_FILE_STORE = '1MB';
const FILLER_STREAM = 'FILLER';
const FILLER_SUBJECT = 'filler';

full.before(async (ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), 'sm-log-full-'));
  const port = await freePort();
  const storeDir = join(ctx.dir, 'jetstream');
  mkdirSync(storeDir, { recursive: true });
  const configPath = join(ctx.dir, 'full.conf');
  const config = natsServerConfig({ name: 'full', port, storeDir }).replace('jetstream {', `jetstream {\n  max_file_store: ${MAX_FILE_STORE}`);
  writeFileSync(configPath, config);
  ctx.server = new NatsServerProcess('full', port, storeDir, configPath, undefined, false);
  await ctx.server.start();
  ctx.nc = await connect({ servers: ctx.server.url });
  await waitForJetStream(ctx.nc);
  ctx.store = await openShardStore({ path: join(ctx.dir, 'store'), domain: 'solo', durability: 'none' });
});

full.after(async (ctx) => {
  await ctx.store?.close();
  await ctx.nc?.close();
  await ctx.server?.destroy();
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

function assertEntry(opId: string, text: string): AssertEntry {
  return { v: 1, op: 'assert', opId, recordedAt: 1_764_000_000_000, source: { agent: 'test' }, fact: { text } };
}

/** Publishes 20 kB messages to the filler stream until JetStream refuses one for want of room. */
async function fillJetStream(nc: NatsConnection): Promise<void> {
  const payload = new Uint8Array(20_000);
  for (let i = 0; i < 200; i++) {
    const reply = new TextDecoder().decode((await nc.request(FILLER_SUBJECT, payload, { timeout: 5_000, headers: headers() })).data);
    if (reply.includes('"error"')) {
      assert.match(reply, /insufficient resources/);
      return;
    }
  }
  assert.unreachable(`${MAX_FILE_STORE} of JetStream never filled`);
}

full('a write the full log cannot take gets UNAVAILABLE saying so; the leader keeps its place and appends again once room is made', async (ctx) => {
  const nc = ctx.nc!;
  const store = ctx.store!;
  const jsm = await nc.jetstreamManager({ checkAPI: false });
  await ensureLogStream(jsm, 'solo', 1);
  await jsm.streams.add({ name: FILLER_STREAM, subjects: [FILLER_SUBJECT] });
  const breaks: PipelineBreak[] = [];
  let applied = 0;
  // Ungrouped, so that many appends are in flight behind the first one refused.
  const p = new WritePipeline({ nc, subject: logSubject('solo'), store, lastSeq: 0, group: false, onApplied: (seq) => (applied = seq) });
  p.onBroken((why) => breaks.push(why));

  const before = await Promise.all(Array.from({ length: 5 }, (_, i) => p.submit(assertEntry(`ok-${i}`, `stored before the store filled ${i}`))));
  assert.equal(before.map((r) => r.seq), [1, 2, 3, 4, 5]);

  await fillJetStream(nc);
  const refused = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      p.submit(assertEntry(`late-${i}`, `written while the store is full ${i}`)).then(
        () => undefined,
        (e: unknown) => e,
      ),
    ),
  );
  for (const err of refused) {
    assert.instance(err, ShardmindError, 'a write the log has no room for is refused');
    const e = err as ShardmindError;
    assert.is(e.code, ErrorCode.UNAVAILABLE, e.message);
    assert.is(e.retryable, true);
    assert.match(e.message, /solo log cannot take writes: JetStream has no room/);
    assert.match(e.message, /insufficient resources/);
  }
  await p.settled();
  assert.equal(breaks, [], 'a refusal for want of room is not a reason to step down');
  assert.is(p.breakReason, undefined);
  assert.is(p.appendedThrough, 5, 'the leader expects the log where it was');
  assert.is(applied, 5);
  assert.is(store.resultOf('ok-3')?.seq, 4, 'what was stored still reads');

  await jsm.streams.purge(FILLER_STREAM);
  // The same opIds again, as an agent's retry sends them, then grouped with new ones.
  const retried = await Promise.all(Array.from({ length: 20 }, (_, i) => p.submit(assertEntry(`late-${i}`, `written while the store is full ${i}`))));
  assert.equal(retried.map((r) => r.seq), Array.from({ length: 20 }, (_, i) => i + 6));
  assert.ok(retried.every((r) => r.status === 'created' && r.duplicate !== true));
  assert.equal(breaks, []);
  assert.is(applied, 25);

  // A follower reading the log finds every message chained to the one before it (Sm-Prev), across the refusals.
  const stream = logStream('solo');
  let prevHash: string | undefined;
  for (let seq = 1; seq <= 25; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (prevHash !== undefined) assert.is(m.header.get(PREV_HEADER), prevHash, `seq ${seq} names the hash of seq ${seq - 1}`);
    prevHash = entryHash(m.data);
  }
  assert.is((await jsm.streams.info(stream)).state.last_seq, 25);
  p.close();
  await p.settled();
  await jsm.streams.delete(stream);
});

async function ask(nc: NatsConnection, op: string, body: unknown): Promise<Record<string, any>> {
  const msg = await nc.request(memSubject(op), encodePayload(body, 'msgpack'), { timeout: 10_000 });
  return decodePayload(msg.data, 'msgpack') as Record<string, any>;
}

full('through a host: a remember the full log cannot take gets UNAVAILABLE, the shard keeps leading and serving reads, and writes resume once room is made', async (ctx) => {
  const nc = ctx.nc!;
  const jsm = await nc.jetstreamManager({ checkAPI: false });
  // The room the test before may have left used up, should it have failed half-way.
  await jsm.streams.purge(FILLER_STREAM);
  const hosts = await startHosts({ config: oneMiniConfig(ctx.server!.url) });
  try {
    const host = hosts.hosts[0]!;
    await routerReady(nc);
    const stored = await ask(nc, 'remember', { v: 1, agent: 'a', domain: 'email', fact: { text: 'The user files invoices under Accounts' } });
    assert.is(stored['status'], 'created', JSON.stringify(stored));

    await fillJetStream(nc);
    const refused = await ask(nc, 'remember', { v: 1, agent: 'a', domain: 'email', opId: 'full-1', fact: { text: 'The user archives newsletters' } });
    assert.is(refused['error']?.code, ErrorCode.UNAVAILABLE, JSON.stringify(refused));
    assert.is(refused['error']?.retryable, true);
    assert.match(refused['error']?.message, /email log cannot take writes: JetStream has no room/);
    assert.is((await host.shard('email'))?.state, 'leading', 'the leader did not step down');
    const got = await ask(nc, 'get', { v: 1, factId: stored['factId'] });
    assert.is(got['error'], undefined, JSON.stringify(got));
    const recalled = await ask(nc, 'recall', { v: 1, domain: 'email', query: 'invoices' });
    assert.is(recalled['error'], undefined, JSON.stringify(recalled));
    assert.not.match(host.stderr(), /pipeline broke|deposed/);

    await jsm.streams.purge(FILLER_STREAM);
    const retried = await ask(nc, 'remember', { v: 1, agent: 'a', domain: 'email', opId: 'full-1', fact: { text: 'The user archives newsletters' } });
    assert.is(retried['status'], 'created', JSON.stringify(retried));
    assert.is(retried['seq'], stored['seq'] + 1, 'appended right after what was there');
  } finally {
    await hosts.stop();
  }
});

full('a host that starts while JetStream has no room cannot claim, says why in its log and status, and leads once room is made', async (ctx) => {
  const nc = ctx.nc!;
  const jsm = await nc.jetstreamManager({ checkAPI: false });
  await jsm.streams.purge(FILLER_STREAM);
  const hosts = await startHosts({ config: oneMiniConfig(ctx.server!.url) });
  try {
    const host = hosts.hosts[0]!;
    await host.stop();
    await fillJetStream(nc);
    host.launch();
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (/epoch claim email\.\d+ failed: JetStream has no room for the sm_epochs bucket \(nats-server: "insufficient resources", err_code 10023\)/.test(host.stderr())) break;
      if (Date.now() > deadline) assert.unreachable(`no claim failure saying why:\n${host.stderr()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const stuck = await host.shard('email');
    assert.is(stuck?.state, 'claiming');
    assert.match(stuck?.lastError ?? '', /JetStream has no room for the sm_epochs bucket/, 'status says why');

    await jsm.streams.purge(FILLER_STREAM);
    await host.waitReady(20_000);
    assert.is((await host.shard('email'))?.state, 'leading');
  } finally {
    await hosts.stop();
  }
});

full.run();
