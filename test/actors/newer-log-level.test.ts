/**
 * What this build does with a log it cannot fully read, on two in-process hosts (a leads email, b stands by) and one
 * real nats-server. The test appends to the log itself, as another writer would:
 * - bytes that are no log message at all, with no level header: skipped by both replicas alike (as always), and the
 *   shard goes on;
 * - a message from a newer build (`Sm-Level: 3`, an op this build does not know): the follower's live tail stops
 *   right before it, and so does the leader once its next append finds the log moved on — both `needsUpgrade`, with
 *   the reason in `status`, and neither leads again (neither could catch up).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, headers, type NatsConnection } from 'nats';
import { Packr } from 'msgpackr';
import { startNatsServer, waitForJetStream, type NatsServerProcess } from '../../cli/index.ts';
import { Host, LEVEL_HEADER, LOG_LEVEL, type HostStatusReply } from '../../actors/index.ts';
import { resolveConfig } from '../../config/index.ts';
import { ctlSubject, decodePayload, encodePayload, logStream, logSubject, shardSubject } from '../../protocol/index.ts';
import { openShardStore } from '../../shards/index.ts';

interface Ctx {
  server?: NatsServerProcess;
  dir?: string;
  a?: Host;
  b?: Host;
  nc?: NatsConnection;
}

type ShardView = HostStatusReply['shards'][number];

const newer = suite<Ctx>('a log from a newer build');

newer.before(async (ctx) => {
  ctx.server = await startNatsServer();
  ctx.dir = mkdtempSync(join(tmpdir(), 'sm-newer-level-'));
  ctx.nc = await connect({ servers: ctx.server.url });
  await waitForJetStream(ctx.nc);
  const config = resolveConfig({
    nodes: [
      { name: 'a', nats: [ctx.server.url] },
      { name: 'b', nats: [ctx.server.url] },
    ],
    domains: [{ name: 'email', description: 'mail', seeds: [] }],
    placement: { email: { leader: 'a', standbys: ['b'] } },
    dataDir: ctx.dir,
    replication: { leaseMs: 600, heartbeatMs: 150 },
  });
  const quiet = process.env['SM_TEST_VERBOSE'] ? (line: string): void => void process.stderr.write(`${line}\n`) : (): void => undefined;
  ctx.a = new Host({ config, node: 'a', openStore: openShardStore, log: quiet });
  ctx.b = new Host({ config, node: 'b', openStore: openShardStore, log: quiet });
  await ctx.a.whenReady();
  await ctx.b.whenReady();
});

newer.after(async (ctx) => {
  await ctx.a?.drain();
  await ctx.b?.drain();
  await ctx.nc?.close();
  await ctx.server?.destroy();
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

async function shard(ctx: Ctx, node: string): Promise<ShardView | undefined> {
  const m = await ctx.nc!.request(ctlSubject(node, 'status'), encodePayload({ v: 1 }, 'msgpack'), { timeout: 2_000 });
  return (decodePayload(m.data, 'msgpack') as HostStatusReply).shards.find((s) => s.domain === 'email');
}

/** One remember request, no retry: its reply (an error reply too). */
async function rememberOnce(ctx: Ctx, opId: string): Promise<Record<string, unknown>> {
  const m = await ctx.nc!.request(shardSubject('email', 'remember'), encodePayload({ v: 1, agent: 't', opId, fact: { text: `note ${opId}` } }, 'msgpack'), { timeout: 2_000 });
  return decodePayload(m.data, 'msgpack') as Record<string, unknown>;
}

/** Remembers until one is accepted (a leader may be changing). */
async function remember(ctx: Ctx, opId: string): Promise<void> {
  await until(`remember ${opId}`, async () => ((await rememberOnce(ctx, opId).catch(() => ({ error: {} })))['error'] ? undefined : true));
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function append(ctx: Ctx, data: Uint8Array, level?: number): Promise<number> {
  const h = headers();
  if (level !== undefined) h.set(LEVEL_HEADER, String(level));
  return (await ctx.nc!.jetstream().publish(logSubject('email'), data, { headers: h })).seq;
}

async function tail(ctx: Ctx): Promise<number> {
  return (await (await ctx.nc!.jetstreamManager({ checkAPI: false })).streams.info(logStream('email'))).state.last_seq;
}

newer('log levels - bytes that are no log message are skipped alike, as before levels', async (ctx) => {
  await remember(ctx, 'before-garbage');
  const seq = await append(ctx, new Uint8Array([0xc1, 0xc1, 0x00, 0x07]));
  await remember(ctx, 'after-garbage');
  const last = await tail(ctx);
  assert.ok(last > seq);
  const views = await until('both replicas past the foreign bytes', async () => {
    const v = await Promise.all([shard(ctx, 'a'), shard(ctx, 'b')]);
    return v.every((s) => s !== undefined && s.appliedSeq >= last && (s.state === 'leading' || s.state === 'following')) ? v : undefined;
  });
  assert.equal(views.map((v) => v!.logLevel), [LOG_LEVEL, LOG_LEVEL]);
  const digests = await Promise.all(['a', 'b'].map(async (node) => {
    const m = await ctx.nc!.request(ctlSubject(node, 'digest'), encodePayload({ v: 1, domain: 'email' }, 'msgpack'), { timeout: 5_000 });
    return (decodePayload(m.data, 'msgpack') as { digest: string }).digest;
  }));
  assert.is(digests[0], digests[1]);
});

newer('log levels - a message from a newer build stops the follower\'s tail and the leader\'s next append; neither leads again', async (ctx) => {
  const before = await Promise.all([shard(ctx, 'a'), shard(ctx, 'b')]);
  const leader = before.find((s) => s?.state === 'leading') ? (before[0]?.state === 'leading' ? 'a' : 'b') : undefined;
  assert.ok(leader, 'a leader to begin with');
  const follower = leader === 'a' ? 'b' : 'a';
  const body = new Packr({ useRecords: false }).pack({ v: 1, op: 'future', opId: 'from-level-3', recordedAt: Date.now() });
  const seq = await append(ctx, body, LOG_LEVEL + 1);
  const why = `needs upgrade: log at level ${LOG_LEVEL + 1} (seq ${seq}), this build understands ${LOG_LEVEL}`;

  // The follower's live tail meets it.
  const f = await until('the follower to stop', async () => {
    const s = await shard(ctx, follower);
    return s?.state === 'needsUpgrade' ? s : undefined;
  });
  assert.is(f.appliedSeq, seq - 1);
  assert.is(f.lastError, why);

  // The leader has not read it; its next append expects the log where it left it, and is refused.
  const refused = await rememberOnce(ctx, 'after-newer');
  assert.is((refused['error'] as { code?: string } | undefined)?.code, 'NOT_LEADER');
  const l = await until('the leader to stop', async () => {
    const s = await shard(ctx, leader!);
    return s?.state === 'needsUpgrade' ? s : undefined;
  });
  assert.is(l.appliedSeq, seq - 1);
  assert.is(l.lastError, why);

  // Nobody can lead past it: both stay where they stopped, through several leases.
  const until3Leases = Date.now() + 3 * 600;
  while (Date.now() < until3Leases) {
    const views = await Promise.all([shard(ctx, 'a'), shard(ctx, 'b')]);
    assert.ok(views.every((s) => s?.state === 'needsUpgrade' && s.appliedSeq === seq - 1), JSON.stringify(views));
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.is(await tail(ctx), seq, 'nothing was appended after it');
});

newer.run();
