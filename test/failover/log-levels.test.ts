/**
 * Log levels on three real Minis (host processes, a 3-node NATS cluster, R3 streams), one of which runs as an older
 * build: `SHARDMIND_SIMULATE_LOG_LEVEL=1` makes mini-3 advertise and understand level 1 only (plain entries and
 * markers; no `batch`, no `prune`). email is led by mini-1 with mini-3 as its FIRST standby, so "never elected" means
 * something: failover would pick mini-3 before mini-2.
 *
 * The scenario runs in order, one cluster:
 * (a) mini-3 at level 1 is up: the leader appends one write per message (no group) and refuses `prune` with
 *     UPGRADE_REQUIRED;
 * (b) mini-3 is stopped, the leader (no longer hearing it) prunes — a level-2 message — and mini-3, started again at
 *     level 1, stops right before it: `needsUpgrade` in status and the CLI, never elected when mini-1 dies; started
 *     at level 2 it catches up to the new leader's digest;
 * (c) every Mini on this build: the leader groups concurrent writes again, and every replica ends on one digest.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect as natsConnect, type NatsConnection } from 'nats';
import { connect, type ShardmindClient } from '../../client/index.ts';
import { LEVEL_HEADER, LOG_LEVEL, SIMULATED_LEVEL_ENV, decodeEntry } from '../../actors/index.ts';
import { runStatus } from '../../cli/index.ts';
import { ShardmindError, logStream } from '../../protocol/index.ts';
import { ctl, digests, DOMAIN, eventually, figures, leaderOf, shardOn, startThreeMinis, threeMiniConfig, waitAllApplied, streamTail, type FaultCluster } from './fault-kit.ts';

interface LeaderView {
  readonly state: string;
  readonly appliedSeq: number;
  readonly writeLevel?: number;
  readonly replicaLevels?: Record<string, number>;
  readonly logLevel?: number;
  readonly lastError?: string;
}

interface LoggedMessage {
  readonly seq: number;
  readonly level: string | undefined;
  readonly op: string | undefined;
  readonly node: string | undefined;
}

const ctx: { cluster?: FaultCluster; nc?: NatsConnection; client?: ShardmindClient; pruneSeq?: number } = {};
const t = suite('log levels', ctx);

t.before(async () => {
  ctx.cluster = await startThreeMinis(
    (urls) => ({
      ...threeMiniConfig(urls),
      placement: {
        email: { leader: 'mini-1', standbys: ['mini-3', 'mini-2'] },
        files: { leader: 'mini-2', standbys: ['mini-3', 'mini-1'] },
      },
    }),
    { envOf: (node) => (node === 'mini-3' ? { [SIMULATED_LEVEL_ENV]: '1' } : undefined) },
  );
  ctx.nc = await natsConnect({ servers: ctx.cluster.nats.urls, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  ctx.client = await connect({ connection: ctx.nc, agent: 'levels', direct: true, deadlineMs: 15_000, timeoutMs: 2_000 });
});

t.after(async () => {
  await ctx.client?.close().catch(() => undefined);
  await ctx.nc?.close().catch(() => undefined);
  await ctx.cluster?.destroy();
});

/** The leader's own view of `domain` (its census of the replicas' levels included). */
async function viewOn(node: string): Promise<LeaderView | undefined> {
  return (await shardOn(ctx.cluster!.nc, node)) as LeaderView | undefined;
}

/** `n` remembers sent at once: what makes a leader group when it may. */
async function burst(n: number, tag: string): Promise<number[]> {
  const results = await Promise.all(
    Array.from({ length: n }, (_, i) => ctx.client!.remember({ text: `${tag} note ${i}`, subject: `${tag}-${i % 7}`, predicate: 'noted', object: String(i) }, { domain: DOMAIN })),
  );
  return results.map((r) => r.seq);
}

/** Every message of the log from `fromSeq`: its `Sm-Level` header, its op, and a marker's node. */
async function readLogFrom(fromSeq: number): Promise<LoggedMessage[]> {
  const nc = ctx.cluster!.nc;
  const js = nc.jetstream();
  const last = await streamTail(nc);
  const out: LoggedMessage[] = [];
  let seen = fromSeq - 1;
  const deadline = Date.now() + 15_000;
  while (seen < last) {
    const consumer = await js.consumers.get(logStream(DOMAIN), { opt_start_seq: seen + 1 });
    const batch = await consumer.fetch({ max_messages: 512, expires: 2_000 });
    for await (const m of batch) {
      if (m.seq !== seen + 1) break;
      seen = m.seq;
      const message = decodeEntry(m.data);
      out.push({
        seq: m.seq,
        level: m.headers?.get(LEVEL_HEADER) || undefined,
        op: message?.op,
        node: message?.op === 'marker' ? message.node : undefined,
      });
    }
    if (seen < last && Date.now() > deadline) throw new Error(`reading the ${DOMAIN} log stopped at seq ${seen} of ${last}`);
  }
  return out;
}

t('log levels - with a level-1 follower up, the leader appends one write per message and refuses prune with UPGRADE_REQUIRED', async () => {
  const started = Date.now();
  const nc = ctx.cluster!.nc;
  // The census has heard both replicas: mini-3 holds the level down.
  const census = await eventually('the leader to hear both replicas', async () => {
    const v = await viewOn('mini-1');
    return v?.replicaLevels?.['mini-2'] !== undefined && v.replicaLevels['mini-3'] !== undefined ? v : undefined;
  });
  assert.equal(census.replicaLevels, { 'mini-2': LOG_LEVEL, 'mini-3': 1 });
  assert.is(census.writeLevel, 1);
  assert.is(census.logLevel, LOG_LEVEL);

  const from = (await streamTail(nc)) + 1;
  const seqs = await burst(200, 'old-follower');
  const logged = await readLogFrom(from);
  assert.is(new Set(seqs).size, 200, 'every write has a sequence of its own: none was grouped');
  assert.ok(logged.every((m) => m.op !== 'batch' && m.level === undefined), `plain level-1 messages only: ${JSON.stringify(logged.filter((m) => m.op === 'batch' || m.level))}`);

  const refused = await ctl(nc, 'mini-1', 'prune', { domain: DOMAIN, inactiveDays: 1 }).then(
    () => undefined,
    (err: unknown) => err,
  );
  assert.instance(refused, ShardmindError);
  assert.is((refused as ShardmindError).code, 'UPGRADE_REQUIRED');
  assert.match((refused as ShardmindError).message, /prune needs log level 2, but a replica of email understands only level 1/);
  figures('log-levels-old-follower', { writes: 200, messages: logged.length, ms: Date.now() - started });
});

t('log levels - a level-1 replica stops before a level-2 message, says it needs an upgrade, is never elected, and catches up once upgraded', async () => {
  const started = Date.now();
  const { nc, hosts } = ctx.cluster!;
  const mini3 = hosts.host('mini-3');
  await mini3.stop();
  const startedWaiting = Date.now();
  // Once mini-3 has been silent past the census window, nothing holds the leader below this build's level.
  await eventually('the leader to write at its own level without mini-3', async () => ((await viewOn('mini-1'))?.writeLevel === LOG_LEVEL ? true : undefined), 20_000);
  const levelRoseMs = Date.now() - startedWaiting;

  const from = (await streamTail(nc)) + 1;
  const report = await ctl<{ ranges: number }>(nc, 'mini-1', 'prune', { domain: DOMAIN, inactiveDays: 1 });
  assert.ok(report.ranges >= 1);
  for (let i = 0; i < 5; i++) await ctx.client!.remember({ text: `after prune ${i}`, subject: 'after', predicate: 'noted', object: String(i) }, { domain: DOMAIN });
  const logged = await readLogFrom(from);
  const prune = logged.find((m) => m.op === 'prune');
  assert.ok(prune, 'the prune is in the log');
  assert.is(prune!.level, '2', 'a prune message says it needs level 2');
  assert.ok(logged.filter((m) => m.op === 'assert').every((m) => m.level === String(LOG_LEVEL)), "asserts carry the leader's resolved predicate spec (level 3) and, with a subject, the level they were written at (4)");
  ctx.pruneSeq = prune!.seq;

  // mini-3 comes back, still the old build: it applies up to the prune and stops there.
  mini3.launch();
  const halted = await eventually('mini-3 to stop before the prune', async () => {
    const v = await viewOn('mini-3');
    return v?.state === 'needsUpgrade' ? v : undefined;
  }, 20_000);
  assert.is(halted.appliedSeq, prune!.seq - 1, 'everything before the level-2 message is applied, nothing from it');
  assert.is(halted.lastError, `needs upgrade: log at level 2 (seq ${prune!.seq}), this build understands 1`);
  const lines: string[] = [];
  const io = { out: (s: string) => void lines.push(s), err: (s: string) => void lines.push(s) };
  await runStatus(['--servers', ctx.cluster!.nats.urls.join(','), '--nodes', 'mini-1,mini-2,mini-3'], io);
  const text = lines.join('');
  assert.match(text, new RegExp(`mini-3 email needsUpgrade: needs upgrade: log at level 2 \\(seq ${prune!.seq}\\), this build understands 1`));
  assert.match(text, /email\s+mini-3\s+none\s+needsUpgrade\s+.*\s1\n/);
  // Hearing mini-3 at level 1 again, the leader keeps its level: the log already holds level-4 entries (the asserts
  // just written), at which mini-3 would stop anyway, so writing below them would only lose their rules (§78).
  const heard = await eventually('the leader to hear mini-3 at level 1 again', async () => {
    const v = await viewOn('mini-1');
    return v?.replicaLevels?.['mini-3'] === 1 ? v : undefined;
  }, 10_000);
  assert.is(heard.writeLevel, LOG_LEVEL, 'the census does not go below the level the log holds');

  // The leader dies. mini-3 is email's first standby, but it could not catch up: mini-2 takes over.
  hosts.host('mini-1').kill('SIGKILL');
  const next = await eventually('a new email leader', async () => leaderOf(nc, DOMAIN, ['mini-2', 'mini-3']), 20_000);
  assert.is(next.node, 'mini-2');
  const still = await viewOn('mini-3');
  assert.is(still?.state, 'needsUpgrade');
  assert.is(still?.appliedSeq, prune!.seq - 1, 'a halted replica does not advance');
  const markers = (await readLogFrom(1)).filter((m) => m.op === 'marker');
  assert.ok(markers.every((m) => m.node !== 'mini-3'), `mini-3 never appended a leadership marker: ${JSON.stringify(markers)}`);

  // Upgraded (restarted without the override): it continues from where it stopped and converges on the leader.
  await mini3.stop();
  mini3.setEnv({});
  await mini3.start(30_000);
  await waitAllApplied(nc, ['mini-2', 'mini-3']);
  const [d2, d3] = await digests(nc, ['mini-2', 'mini-3']);
  assert.is(d3!.appliedSeq, d2!.appliedSeq);
  assert.is(d3!.digest, d2!.digest, 'the upgraded replica holds what the leader holds');
  figures('log-levels-halt', { pruneSeq: prune!.seq, levelRoseMs, ms: Date.now() - started });
});

t('log levels - with every Mini at level 2, the leader groups concurrent writes again and all replicas agree', async () => {
  const started = Date.now();
  const { nc, hosts } = ctx.cluster!;
  await hosts.host('mini-1').start(30_000);
  const census = await eventually("the leader to hear both replicas at this build's level", async () => {
    const v = await viewOn('mini-2');
    return v?.writeLevel === LOG_LEVEL && v.replicaLevels?.['mini-1'] === LOG_LEVEL && v.replicaLevels['mini-3'] === LOG_LEVEL ? v : undefined;
  }, 20_000);
  assert.is(census.state, 'leading');

  const from = (await streamTail(nc)) + 1;
  const seqs = await burst(200, 'all-upgraded');
  const logged = await readLogFrom(from);
  const groups = logged.filter((m) => m.op === 'batch');
  assert.ok(groups.length > 0, 'concurrent writes were grouped');
  assert.ok(new Set(seqs).size < 200, 'some writes share a log message');
  assert.ok(groups.every((m) => m.level === String(LOG_LEVEL)), `every group says the level it needs: ${LOG_LEVEL}, for asserts with a subject written at it`);

  await waitAllApplied(nc);
  const all = await digests(nc, ['mini-1', 'mini-2', 'mini-3']);
  assert.is(new Set(all.map((d) => d.digest)).size, 1, `one digest on every replica: ${JSON.stringify(all)}`);
  figures('log-levels-upgraded', { writes: 200, messages: logged.length, groups: groups.length, ms: Date.now() - started });
});

t.run();
