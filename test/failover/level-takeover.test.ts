/**
 * A leader that takes over a log holding level-4 entries writes level 4 from its first write (decisions §78), on
 * three real Minis (host processes, a 3-node NATS cluster, R3 streams). Before, it started at 3 and rose only when its
 * census of the replicas settled — with the old leader dead, one census window (4.5 s at the shipped lease) — and
 * writes in that window lost level 4's rules: here, the review's case A (a scheduled value called off, then a new
 * value) answered two values of a `one` predicate.
 *
 * The scenario runs in order, one cluster, email's predicate `works_in_timezone` is `one`:
 * (a) mini-3 runs as a level-3 build: the leader writes level 3; killed with SIGKILL, the next leader's first write is
 *     level 3 too, and it stays at 3 while it hears mini-3 (nothing in the log says more);
 * (b) every Mini on this build: the leader writes level 4; killed with SIGKILL, the next leader's first write right
 *     after it takes over carries level 4 and answers one value;
 * (c) with that Mini still down, a planned hand-off: the target's first write carries level 4 and answers one value;
 *     the dead Mini, started again, reaches the same digest.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect as natsConnect, type NatsConnection } from 'nats';
import { connect, type ShardmindClient } from '../../client/index.ts';
import { LEVEL_HEADER, LOG_LEVEL, SIMULATED_LEVEL_ENV, decodeEntry } from '../../actors/index.ts';
import { migrateShard } from '../../cli/index.ts';
import { logStream } from '../../protocol/index.ts';
import { digests, DOMAIN, eventually, figures, leaderOf, NODES, shardOn, startThreeMinis, threeMiniConfig, waitAllApplied, type FaultCluster } from './fault-kit.ts';

interface LeaderView {
  readonly state: string;
  readonly epoch: number;
  readonly writeLevel?: number;
  readonly replicaLevels?: Record<string, number>;
}

const DAY = 86_400_000;
const PREDICATE = 'works_in_timezone';
const ctx: { cluster?: FaultCluster; nc?: NatsConnection; client?: ShardmindClient; now: number; down?: string } = { now: Date.now() };
const t = suite('level takeover', ctx);

t.before(async () => {
  ctx.cluster = await startThreeMinis(
    (urls) => {
      const base = threeMiniConfig(urls);
      return {
        ...base,
        domains: [
          { name: 'email', description: 'mail', seeds: ['send an email'], predicates: { [PREDICATE]: { cardinality: 'one', halfLifeDays: 365 } } },
          { name: 'files', description: 'documents', seeds: ['save the file'] },
        ],
      };
    },
    { envOf: (node) => (node === 'mini-3' ? { [SIMULATED_LEVEL_ENV]: '3' } : undefined) },
  );
  ctx.nc = await natsConnect({ servers: ctx.cluster.nats.urls, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  ctx.client = await connect({ connection: ctx.nc, agent: 'takeover', direct: true, deadlineMs: 20_000, timeoutMs: 2_000 });
});

t.after(async () => {
  await ctx.client?.close().catch(() => undefined);
  await ctx.nc?.close().catch(() => undefined);
  await ctx.cluster?.destroy();
});

async function viewOn(node: string): Promise<LeaderView | undefined> {
  return (await shardOn(ctx.cluster!.nc, node)) as LeaderView | undefined;
}

function zone(who: string, object: string, validFrom: number) {
  return ctx.client!.remember({ text: `${who} works in ${object}`, subject: who, predicate: PREDICATE, object, validFrom: new Date(validFrom) }, { domain: DOMAIN });
}

/** Case A's first half for `who`: PST, a move to CET in 30 days, the move called off. PST still ends at +30 d. */
async function scheduleAndCallOff(who: string): Promise<number[]> {
  const pst = await zone(who, 'PST', ctx.now - DAY);
  const cet = await zone(who, 'CET', ctx.now + 30 * DAY);
  assert.is(cet.status, 'superseded_previous');
  const off = await ctx.client!.retract(cet.factId, { domain: DOMAIN });
  return [pst.seq, cet.seq, off.seq];
}

/** Who works where two days from now, by what the memory knows now. */
async function zonesOf(who: string): Promise<string[]> {
  const r = await ctx.client!.recall({ subject: who, predicate: PREDICATE, domain: DOMAIN, asOf: new Date(ctx.now + 2 * DAY), limit: 10 });
  return r.facts.map((f) => String(f.object)).sort();
}

/** The message at `seq`: its `Sm-Level` header and the `level` its asserts say they were written at. */
async function messageAt(seq: number): Promise<{ header: string | undefined; levels: unknown[] }> {
  const jsm = await ctx.cluster!.nc.jetstreamManager({ checkAPI: false });
  const m = await jsm.streams.getMessage(logStream(DOMAIN), { seq });
  const message = decodeEntry(m.data);
  const entries = message === undefined ? [] : message.op === 'batch' ? message.entries : [message];
  const asserts = entries.filter((e) => e.op === 'assert') as unknown as Record<string, unknown>[];
  return { header: m.header?.get(LEVEL_HEADER) || undefined, levels: asserts.map((e) => e['level']) };
}

async function leader(nodes: readonly string[] = NODES): Promise<string> {
  return (await eventually(`an email leader among ${nodes.join(', ')}`, () => leaderOf(ctx.cluster!.nc, DOMAIN, nodes), 30_000)).node;
}

t('level takeover - with a level-3 replica, a leader killed with SIGKILL is followed by one whose first write is level 3, and it holds at 3', async () => {
  const started = Date.now();
  const first = await leader();
  await eventually('the leader to hear mini-3 at level 3', async () => {
    const v = await viewOn(first);
    return v?.replicaLevels?.['mini-3'] === 3 && v.writeLevel === 3 ? true : undefined;
  });
  const seqs = await scheduleAndCallOff('ann');
  assert.equal(await messageAt(seqs[0]!), { header: '3', levels: [undefined] }, 'level 3: no written level on the entry');
  await waitAllApplied(ctx.cluster!.nc);

  ctx.cluster!.hosts.host(first).kill('SIGKILL');
  await ctx.cluster!.hosts.host(first).waitExit();
  const est = await zone('ann', 'EST', ctx.now + DAY);
  const next = await leader(NODES.filter((n) => n !== first));
  assert.equal(await messageAt(est.seq), { header: '3', levels: [undefined] }, "the new leader's first write is level 3: nothing in the log says more");
  assert.equal(await zonesOf('ann'), ['EST', 'PST'], 'level-3 entries keep the rules they were written under');
  // Settled, the census still hears mini-3 at 3 (if mini-3 leads, it is a level-3 build itself).
  const settled = await eventually('the new leader to settle at level 3', async () => {
    const v = await viewOn(next);
    return v?.writeLevel === 3 && (next === 'mini-3' || v.replicaLevels?.['mini-3'] === 3) ? v : undefined;
  });
  assert.is(settled.writeLevel, 3);
  const later = await zone('ann-2', 'PST', ctx.now);
  assert.is((await messageAt(later.seq)).header, '3');
  const live = NODES.filter((n) => n !== first);
  await waitAllApplied(ctx.cluster!.nc, live);
  const ds = await digests(ctx.cluster!.nc, live);
  assert.is(new Set(ds.map((d) => d.digest)).size, 1, JSON.stringify(ds));

  // Back on its feet, then every Mini on this build.
  await ctx.cluster!.hosts.host(first).start(30_000);
  const mini3 = ctx.cluster!.hosts.host('mini-3');
  await mini3.stop();
  mini3.setEnv({});
  await mini3.start(30_000);
  figures('level-takeover-mixed', { first, next, ms: Date.now() - started });
});

t('level takeover - once the log holds level 4, the leader that takes over after a SIGKILL writes level 4 from its first write', async () => {
  const started = Date.now();
  const current = await leader();
  await eventually('the leader to write at level 4 with every Mini upgraded', async () => ((await viewOn(current))?.writeLevel === LOG_LEVEL ? true : undefined), 30_000);
  const seqs = await scheduleAndCallOff('bob');
  assert.equal(await messageAt(seqs[0]!), { header: String(LOG_LEVEL), levels: [LOG_LEVEL] });
  await waitAllApplied(ctx.cluster!.nc);

  ctx.cluster!.hosts.host(current).kill('SIGKILL');
  // Dead before the write is sent, so no answer can come from it.
  await ctx.cluster!.hosts.host(current).waitExit();
  ctx.down = current;
  const killedAt = Date.now();
  // The first write after the kill: the client retries it until the next leader takes it.
  const est = await zone('bob', 'EST', ctx.now + DAY);
  const acceptedMs = Date.now() - killedAt;
  const next = await leader(NODES.filter((n) => n !== current));
  assert.equal(await messageAt(est.seq), { header: String(LOG_LEVEL), levels: [LOG_LEVEL] }, `the first write ${acceptedMs} ms after the kill carries level 4`);
  assert.equal(await zonesOf('bob'), ['EST'], 'level 4: one value at a time');
  const v = await viewOn(next);
  assert.is(v?.writeLevel, LOG_LEVEL);
  figures('level-takeover-kill', { killed: current, next, acceptedMs, ms: Date.now() - started });
});

t('level takeover - a hand-off with a Mini down: the target writes level 4 from its first write, and the Mini back agrees', async () => {
  const started = Date.now();
  const down = ctx.down!;
  const live = NODES.filter((n) => n !== down);
  const from = await leader(live);
  const to = live.find((n) => n !== from)!;
  await scheduleAndCallOff('cy');
  await waitAllApplied(ctx.cluster!.nc, live);

  const jsm = await ctx.cluster!.nc.jetstreamManager({ checkAPI: false });
  const report = await migrateShard(ctx.cluster!.nc, jsm, { domain: DOMAIN, to, nodes: live, timeoutMs: 60_000, probe: false });
  assert.is(report.to, to);
  const handedAt = Date.now();
  const est = await zone('cy', 'EST', ctx.now + DAY);
  const acceptedMs = Date.now() - handedAt;
  assert.is(await leader(live), to);
  assert.equal(await messageAt(est.seq), { header: String(LOG_LEVEL), levels: [LOG_LEVEL] }, `the first write ${acceptedMs} ms after the hand-off carries level 4`);
  assert.equal(await zonesOf('cy'), ['EST'], 'level 4: one value at a time');

  await ctx.cluster!.hosts.host(down).start(30_000);
  await waitAllApplied(ctx.cluster!.nc);
  const all = await digests(ctx.cluster!.nc, NODES);
  assert.is(new Set(all.map((d) => d.digest)).size, 1, `one digest on every replica: ${JSON.stringify(all)}`);
  figures('level-takeover-hand-off', { from, to, acceptedMs, ms: Date.now() - started });
});

t.run();
