/**
 * Log levels piece by piece (the three-Mini scenario is test/failover/log-levels.test.ts): what level a message
 * needs, the shard machine's `needsUpgrade` halt, the leader's census of its replicas' levels (against a real
 * nats-server, with hosts' status replies answered on real subscriptions, its rounds driven by a manual clock), and
 * the write pipeline at level 1 and 2 (real JetStream, real LMDB): no groups and no prune at 1, groups that say
 * `Sm-Level: 2` at 2, and a prune still waiting to be grouped when the level drops is refused.
 */
import { suite, test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createActor } from 'xstate';
import { connect, type NatsConnection, type Subscription } from 'nats';
import { startNatsServer, waitForJetStream, type NatsServerProcess } from '../../cli/index.ts';
import {
  appendLevel,
  bodyLevel,
  decodeEntry,
  ensureLogStream,
  hostLogLevel,
  LEVEL_HEADER,
  LogCompactedError,
  LOG_LEVEL,
  ManualClock,
  NeedsUpgradeError,
  parseLevelHeader,
  ReplicaLevels,
  shardMachine,
  SIMULATED_LEVEL_ENV,
  WritePipeline,
  type ShardEvent,
  type ShardRuntime,
} from '../../actors/index.ts';
import { ctlSubject, encodePayload, logStream, logSubject, ShardmindError } from '../../protocol/index.ts';
import { openShardStore, type AssertEntry, type LogMessage, type PruneEntry, type ShardStore } from '../../shards/index.ts';

const source = { agent: 'test' };

test('log level - plain entries and markers need level 1; groups and prune need 2; the header defaults to 1', () => {
  assert.is(LOG_LEVEL, 4);
  for (const op of ['assert', 'reinforce', 'retract', 'forget', 'entity', 'marker']) assert.is(appendLevel(1, op), 1, op);
  assert.is(appendLevel(1, 'prune'), 2);
  assert.is(appendLevel(3, 'assert'), 2, 'a group of plain writes is a batch');
  const plain = { v: 1, op: 'assert', opId: 'a', recordedAt: 1, source, fact: { text: 'x' } } as LogMessage;
  const batch = { v: 1, op: 'batch', opId: 'g', recordedAt: 1, entries: [plain, plain] } as LogMessage;
  assert.is(bodyLevel(plain), 1);
  assert.is(bodyLevel(batch), 2);
  assert.is(parseLevelHeader(undefined), 1);
  assert.is(parseLevelHeader(''), 1);
  assert.is(parseLevelHeader('3'), 3);
  assert.is(parseLevelHeader('two'), 1, 'a malformed header leaves the body to decide');
  assert.is(hostLogLevel({}), LOG_LEVEL);
  assert.is(hostLogLevel({ [SIMULATED_LEVEL_ENV]: '1' }), 1);
  assert.throws(() => hostLogLevel({ [SIMULATED_LEVEL_ENV]: String(LOG_LEVEL + 1) }), /must be an integer from 1 to 4/);
  assert.is(new NeedsUpgradeError('email', 41, 2, 1).message, 'needs upgrade: log at level 2 (seq 41), this build understands 1');
});

// ---- the machine ------------------------------------------------------------------------------------------------

class HaltingRuntime implements ShardRuntime {
  readonly calls: string[] = [];
  catchUpError: unknown;
  followSend: ((e: ShardEvent) => void) | undefined;
  async open(): Promise<void> {
    this.calls.push('open');
  }
  async catchUp(): Promise<void> {
    this.calls.push('catchUp');
    const err = this.catchUpError;
    this.catchUpError = undefined;
    if (err) throw err;
  }
  bootstrapError: unknown;
  async bootstrap(): Promise<void> {
    this.calls.push('bootstrap');
    if (this.bootstrapError) throw this.bootstrapError;
  }
  async claim(): Promise<void> {
    this.calls.push('claim');
  }
  lead(): () => void {
    this.calls.push('lead');
    return () => this.calls.push('lead:cleanup');
  }
  follow(send: (e: ShardEvent) => void): () => void {
    this.calls.push('follow');
    this.followSend = send;
    return () => this.calls.push('follow:cleanup');
  }
  watchAhead(): () => void {
    this.calls.push('watchAhead');
    return () => this.calls.push('watchAhead:cleanup');
  }
  async handOff(): Promise<void> {
    this.calls.push('handOff');
  }
  async drain(): Promise<void> {
    this.calls.push('drain');
  }
}

async function until(actor: { getSnapshot(): { value: unknown } }, state: string): Promise<void> {
  const deadline = Date.now() + 2_000;
  while (actor.getSnapshot().value !== state) {
    if (Date.now() > deadline) throw new Error(`still ${String(actor.getSnapshot().value)}, wanted ${state}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

test('shard machine - a catch-up that meets a newer log level halts in needsUpgrade: no claim, PROMOTE ignored, STOP drains', async () => {
  const rt = new HaltingRuntime();
  rt.catchUpError = new NeedsUpgradeError('email', 7, 2, 1);
  const actor = createActor(shardMachine, { input: { runtime: rt, wantsLead: true } }).start();
  await until(actor, 'needsUpgrade');
  assert.is(actor.getSnapshot().context.lastError, 'needs upgrade: log at level 2 (seq 7), this build understands 1');
  actor.send({ type: 'PROMOTE' });
  await new Promise((r) => setTimeout(r, 20));
  assert.is(actor.getSnapshot().value, 'needsUpgrade');
  assert.equal(rt.calls, ['open', 'catchUp'], 'a placed leader that cannot catch up never claims');
  actor.send({ type: 'STOP' });
  await until(actor, 'stopped');
  assert.equal(rt.calls, ['open', 'catchUp', 'drain']);
});

test('shard machine - a follower whose tail meets a newer log level stops following and halts', async () => {
  const rt = new HaltingRuntime();
  const actor = createActor(shardMachine, { input: { runtime: rt, wantsLead: false } }).start();
  await until(actor, 'following');
  rt.followSend!({ type: 'NEEDS_UPGRADE', detail: 'needs upgrade: log at level 3 (seq 9), this build understands 2' });
  await until(actor, 'needsUpgrade');
  assert.equal(rt.calls, ['open', 'catchUp', 'follow', 'follow:cleanup']);
  assert.match(actor.getSnapshot().context.lastError ?? '', /level 3 \(seq 9\)/);
  actor.stop();
});

test('shard machine - a bootstrap whose snapshot was taken at a higher log level halts instead of installing it', async () => {
  const rt = new HaltingRuntime();
  rt.catchUpError = new LogCompactedError('email', 1, 500);
  rt.bootstrapError = new NeedsUpgradeError('email', 499, 2, 1, 'snapshot');
  const actor = createActor(shardMachine, { input: { runtime: rt, wantsLead: false } }).start();
  await until(actor, 'needsUpgrade');
  assert.equal(rt.calls, ['open', 'catchUp', 'bootstrap']);
  assert.is(actor.getSnapshot().context.lastError, 'needs upgrade: snapshot at level 2 (seq 499), this build understands 1');
  actor.stop();
});

// ---- against a real nats-server ---------------------------------------------------------------------------------

interface Ctx {
  server?: NatsServerProcess;
  nc?: NatsConnection;
  dir?: string;
  stores: ShardStore[];
  subs: Subscription[];
  n: number;
}

const live = suite<Ctx>('log levels on NATS', { stores: [], subs: [], n: 0 });

live.before(async (ctx) => {
  ctx.server = await startNatsServer();
  ctx.nc = await connect({ servers: ctx.server.url });
  await waitForJetStream(ctx.nc);
  ctx.dir = mkdtempSync(join(tmpdir(), 'sm-levels-'));
});

live.after(async (ctx) => {
  for (const s of ctx.subs) s.unsubscribe();
  for (const s of ctx.stores) await s.close();
  await ctx.nc?.close();
  await ctx.server?.destroy();
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

/**
 * A host's `status` reply on a real subscription: `reply()` says what it answers now (undefined: silence, the request
 * times out), `lateMs()` how late it answers. `down()` unsubscribes (a stopped host: no responders), `up()` again.
 */
function fakeHost(
  ctx: Ctx,
  node: string,
  reply: () => Record<string, unknown> | undefined,
  lateMs: () => number = () => 0,
): { up(): void; down(): void } {
  let sub: Subscription | undefined;
  const up = (): void => {
    sub = ctx.nc!.subscribe(ctlSubject(node, 'status'), {
      callback: (_, m) => {
        const body = reply();
        if (!body) return;
        const answer = (): void => {
          try {
            m.respond(encodePayload({ v: 1, node, ...body }, 'msgpack'));
          } catch {
            // A late answer after the suite closed its connection: nobody is asking any more.
          }
        };
        const late = lateMs();
        if (late > 0) setTimeout(answer, late);
        else answer();
      },
    });
    ctx.subs.push(sub);
  };
  up();
  return { up, down: () => sub?.unsubscribe() };
}

// The census's rounds are driven by a manual clock: only its status requests (with a generous timeout) take real time.
const CENSUS = { intervalMs: 100, windowMs: 400, requestTimeoutMs: 1_000 };

/** A census on a manual clock that records its changes and its log lines. */
function census(ctx: Ctx, peers: string[], onChange?: (level: number) => void): { levels: ReplicaLevels; clock: ManualClock; changes: number[]; lines: string[] } {
  const clock = new ManualClock(0);
  const changes: number[] = [];
  const lines: string[] = [];
  const levels = new ReplicaLevels({
    nc: ctx.nc!,
    domain: 'email',
    peers,
    ownLevel: 2,
    clock,
    ...CENSUS,
    onChange: (level) => {
      changes.push(level);
      onChange?.(level);
    },
    log: (line) => lines.push(line),
  });
  return { levels, clock, changes, lines };
}

/**
 * Waits (real time: the census asks real subscriptions) until the round under way has decided and scheduled the next
 * one; with `advanceMs`, first moves the manual clock that far, which starts that next round.
 */
async function round(c: { clock: ManualClock }, advanceMs = 0): Promise<void> {
  if (advanceMs > 0) c.clock.advance(advanceMs);
  const deadline = Date.now() + 5_000;
  while (c.clock.pending !== 1) {
    if (Date.now() > deadline) throw new Error(`the census did not schedule its next round (at ${c.clock.now()} ms)`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const emailShards = [{ domain: 'email', state: 'following' }];

live('replica levels - a new census counts a peer it has not heard yet as level 1: an old build answering late its first time does not let the leader write level 2', async (ctx) => {
  let asked = 0;
  fakeHost(ctx, 'late-new', () => ({ shards: emailShards, logLevel: 2 }));
  // An old build (no logLevel) on a loaded Mini: its first answer comes after the request timed out.
  fakeHost(ctx, 'late-old', () => ({ shards: emailShards }), () => (asked++ === 0 ? 1_500 : 0));
  const c = census(ctx, ['late-new', 'late-old']);
  c.levels.start();
  try {
    await round(c);
    assert.equal(c.levels.status(), { writeLevel: 1, replicaLevels: { 'late-new': 2 } }, 'not heard yet, late-old still holds the level at 1');
    assert.equal(c.changes, []);
    await round(c, CENSUS.intervalMs);
    assert.equal(c.levels.status(), { writeLevel: 1, replicaLevels: { 'late-new': 2, 'late-old': 1 } });
    assert.equal(c.changes, [], 'never level 2 while the old build is up');
  } finally {
    c.levels.stop();
  }
});

live('replica levels - a peer silent since the census began holds the level at 1 for one window; a host without the domain does not; with no peers the level is the build\'s at once', async (ctx) => {
  fakeHost(ctx, 'quiet-new', () => ({ shards: emailShards, logLevel: 2 }));
  fakeHost(ctx, 'quiet-other', () => ({ shards: [{ domain: 'files', state: 'following' }], logLevel: 2 }));
  // 'quiet-down' never answers: no host listens there (a Mini that is down when leadership changes).
  const c = census(ctx, ['quiet-new', 'quiet-other', 'quiet-down']);
  c.levels.start();
  // What prune waits for: the level once the census has settled, not the 1 it holds while a peer is unheard.
  let settledAt: number | undefined;
  const settled = c.levels.settled().then((level) => {
    settledAt = c.clock.now();
    return level;
  });
  try {
    await round(c);
    for (let at = CENSUS.intervalMs; at < CENSUS.windowMs; at += CENSUS.intervalMs) {
      assert.is(c.levels.writeLevel, 1, `still level 1 at ${c.clock.now()} ms`);
      assert.ok(c.levels.settling, `still settling at ${c.clock.now()} ms`);
      await round(c, CENSUS.intervalMs);
    }
    assert.is(c.levels.writeLevel, 1, `still level 1 at ${c.clock.now()} ms`);
    assert.equal(c.changes, []);
    assert.is(settledAt, undefined, 'settled() waits while the census is young');
    await round(c, CENSUS.intervalMs);
    assert.is(c.clock.now(), CENSUS.windowMs);
    assert.equal(c.levels.status(), { writeLevel: 2, replicaLevels: { 'quiet-new': 2 } }, 'silent for a whole window since the census began');
    assert.equal(c.changes, [2]);
    assert.is(await settled, 2, 'settled() gives the level decided once the window passed');
    assert.is(settledAt, CENSUS.windowMs);
    assert.not.ok(c.levels.settling);
    assert.is(await c.levels.settled(), 2, 'and at once afterwards');
  } finally {
    c.levels.stop();
  }

  const alone = census(ctx, []);
  alone.levels.start();
  assert.is(alone.levels.writeLevel, 2, 'a single Mini writes level 2 at once');
  assert.equal(alone.changes, [2]);
  assert.is(alone.clock.pending, 0, 'and asks no one');
  alone.levels.stop();
});

live('replica levels - an old build (no level advertised) holds the leader at 1; once silent past the window it no longer does', async (ctx) => {
  fakeHost(ctx, 'r-new', () => ({ shards: emailShards, logLevel: 2 }));
  const old = fakeHost(ctx, 'r-old', () => ({ shards: emailShards }));
  fakeHost(ctx, 'r-other', () => ({ shards: [{ domain: 'files', state: 'following' }] }));
  const c = census(ctx, ['r-new', 'r-old', 'r-other']);
  c.levels.start();
  try {
    await round(c);
    assert.equal(c.levels.status(), { writeLevel: 1, replicaLevels: { 'r-new': 2, 'r-old': 1 } }, 'a host holding no email replica does not count');
    assert.equal(c.changes, [], 'level 1 is where a leader starts: nothing changed');
    old.down();
    // Last heard at 0: it counts through 400 ms (the window), and no longer at the round after.
    while (c.clock.now() < CENSUS.windowMs) await round(c, CENSUS.intervalMs);
    assert.is(c.levels.writeLevel, 1);
    await round(c, CENSUS.intervalMs);
    assert.equal(c.changes, [2]);
    assert.equal(c.levels.status().replicaLevels, { 'r-new': 2 });
    old.up();
    await round(c, CENSUS.intervalMs);
    assert.equal(c.changes, [2, 1], 'heard again, the old build holds the level down again');
  } finally {
    c.levels.stop();
  }
});

live('replica levels - a throwing onChange is logged and the census goes on (no unhandled rejection)', async (ctx) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  fakeHost(ctx, 'throw-new', () => ({ shards: emailShards, logLevel: 2 }));
  const c = census(ctx, ['throw-new'], () => {
    throw new Error('the pipeline is gone');
  });
  c.levels.start();
  try {
    await round(c);
    assert.is(c.levels.writeLevel, 2);
    assert.equal(c.changes, [2]);
    assert.ok(c.lines.some((l) => l.includes('applying level 2 failed') && l.includes('the pipeline is gone')), c.lines.join('\n'));
    await round(c, CENSUS.intervalMs);
    await new Promise((r) => setImmediate(r));
    assert.equal(unhandled, []);
  } finally {
    c.levels.stop();
    process.off('unhandledRejection', onUnhandled);
  }
});

async function freshShard(ctx: Ctx): Promise<{ domain: string; store: ShardStore }> {
  const domain = `l${++ctx.n}`;
  await ensureLogStream(await ctx.nc!.jetstreamManager({ checkAPI: false }), domain, 1);
  const store = await openShardStore({ path: join(ctx.dir!, domain), domain, durability: 'none' });
  ctx.stores.push(store);
  return { domain, store };
}

function assertEntry(opId: string): AssertEntry {
  return { v: 1, op: 'assert', opId, recordedAt: 1_764_000_000_000, source, fact: { text: `note ${opId}` } };
}

function pruneEntry(opId: string): PruneEntry {
  return { v: 1, op: 'prune', opId, recordedAt: 1_764_000_000_000, source, fromPosition: 1, toPosition: 2, inactiveDays: 1e9 };
}

async function logged(ctx: Ctx, domain: string): Promise<{ op: string | undefined; level: string | undefined }[]> {
  const jsm = await ctx.nc!.jetstreamManager({ checkAPI: false });
  const n = (await jsm.streams.info(logStream(domain))).state.last_seq;
  const out: { op: string | undefined; level: string | undefined }[] = [];
  for (let seq = 1; seq <= n; seq++) {
    const m = await jsm.streams.getMessage(logStream(domain), { seq });
    out.push({ op: decodeEntry(m.data)?.op, level: m.header?.get(LEVEL_HEADER) || undefined });
  }
  return out;
}

live('write pipeline - at level 1 it appends one write per message and refuses prune; raised to 2 it groups and says so', async (ctx) => {
  const { domain, store } = await freshShard(ctx);
  const p = new WritePipeline({ nc: ctx.nc!, subject: logSubject(domain), store, lastSeq: 0, logLevel: 1, onApplied: () => undefined });
  try {
    await Promise.all(Array.from({ length: 60 }, (_, i) => p.submit(assertEntry(`one-${i}`))));
    const refused = await p.submit(pruneEntry('prune-1')).then(() => undefined, (e: unknown) => e);
    assert.instance(refused, ShardmindError);
    assert.is((refused as ShardmindError).code, 'UPGRADE_REQUIRED');
    let log = await logged(ctx, domain);
    assert.is(log.length, 60, 'one message per write');
    assert.ok(log.every((m) => m.op === 'assert' && m.level === undefined));

    p.useLogLevel(2);
    assert.is(p.writeLevel, 2);
    await Promise.all(Array.from({ length: 60 }, (_, i) => p.submit(assertEntry(`two-${i}`))));
    await p.submit(pruneEntry('prune-2'));
    log = (await logged(ctx, domain)).slice(60);
    assert.ok(log.length < 61, `grouped: ${log.length} messages for 61 writes`);
    assert.ok(log.some((m) => m.op === 'batch'));
    assert.ok(log.filter((m) => m.op === 'batch' || m.op === 'prune').every((m) => m.level === '2'), 'groups and prune say level 2');
    assert.ok(log.filter((m) => m.op === 'assert').every((m) => m.level === undefined), 'a lone plain write stays level 1');
  } finally {
    p.close();
    await p.settled();
  }
});

live('write pipeline - a prune taken while grouping is refused, not appended at level 2, when the level drops before it goes out', async (ctx) => {
  const { domain, store } = await freshShard(ctx);
  // One append in flight is enough to hold writes back: what is submitted in one tick waits to be grouped.
  const p = new WritePipeline({ nc: ctx.nc!, subject: logSubject(domain), store, lastSeq: 0, logLevel: 2, groupWhenInFlight: 1, onApplied: () => undefined });
  try {
    const first = p.submit(assertEntry('queued-1'));
    const prune = p.submit(pruneEntry('queued-prune')).then(() => undefined, (e: unknown) => e);
    const last = p.submit(assertEntry('queued-2'));
    // The census hears a level-1 replica before the queue is flushed.
    p.useLogLevel(1);
    await Promise.all([first, last]);
    const refused = await prune;
    assert.instance(refused, ShardmindError);
    assert.is((refused as ShardmindError).code, 'UPGRADE_REQUIRED');
    assert.equal(await logged(ctx, domain), [
      { op: 'assert', level: undefined },
      { op: 'assert', level: undefined },
    ], 'the plain writes went out one by one; no level-2 message');
  } finally {
    p.close();
    await p.settled();
  }
});

test.run();
live.run();
