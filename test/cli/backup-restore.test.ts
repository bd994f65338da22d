/**
 * `shardmind backup` and `restore` on real clusters: a backup taken from a live single-server cluster while writers
 * run, checked with `backup --verify`, restored into a fresh 3-server (R3) cluster whose hosts had already started
 * the domain once (refused while they run it, accepted once they are stopped); the restarted hosts install the
 * backup's store, every replica has one digest, recall finds a fact from before the backup, and new writes go on
 * top. Refused, changing nothing: a restore into a domain whose log holds facts, a truncated, damaged or foreign
 * file, a file of another domain. Real nats-server, real host processes, real LMDB.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, mkdtempSync, openSync, readFileSync, rmSync, closeSync, writeSync, writeFileSync, statSync, truncateSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as natsConnect, type NatsConnection } from 'nats';
import { connect } from '../../client/index.ts';
import {
  readBackupHeader,
  runBackup,
  runRestore,
  startNatsCluster,
  startNatsServer,
  waitForJetStream,
  type BackupResult,
  type NatsCluster,
  type NatsServerProcess,
  type RestoreResult,
} from '../../cli/index.ts';
import type { ClusterConfigInput } from '../../config/index.ts';
import { SnapshotBucket } from '../../actors/index.ts';
import { logStream } from '../../protocol/index.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';
import { digests, eventually, startWriters } from '../failover/fault-kit.ts';

const NODES = ['mini-1', 'mini-2', 'mini-3'];
/** The hosts each test starts: two of the config's three nodes. */
const RESTORED = ['mini-1', 'mini-2'];
const RULE = 'The user never takes meetings before 10';

function config(urls: readonly string[], replicas: number): ClusterConfigInput {
  return {
    cluster: { name: `backup-r${replicas}` },
    nodes: NODES.map((name, i) => ({ name, nats: [urls[i % urls.length]!, ...urls.filter((_, j) => j !== i % urls.length)] })),
    domains: [{ name: 'email', description: 'Email messages, replies, inbox and attachments.', seeds: ['send an email to Bob'] }],
    placement: { email: { leader: 'mini-1', standbys: ['mini-2', 'mini-3'] } },
    replication: { replicas, leaseMs: 1500, heartbeatMs: 250 },
    compaction: { everyEntries: 0, retainEntries: 1, keepSnapshots: 2 },
  };
}

interface Ctx {
  dir: string;
  source?: { nats: NatsServerProcess; hosts?: HostCluster; nc: NatsConnection };
  target?: { nats: NatsCluster; hosts?: HostCluster; nc: NatsConnection };
  /** The backup taken under writes. */
  file?: string;
  backup?: BackupResult;
}

const t = suite<Ctx>('backup and restore', { dir: mkdtempSync(join(tmpdir(), 'sm-backup-')) });

/** Runs a command in-process, capturing what it prints. */
async function cli(run: (args: string[], io: { out(s: string): void; err(s: string): void }) => Promise<number>, args: string[]) {
  let out = '';
  let err = '';
  const code = await run(args, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}

const backup = (args: string[]) => cli(runBackup, args);
const restore = (args: string[]) => cli(runRestore, args);

/** What a restore must not change: the log's bounds and the snapshots. */
async function domainState(nc: NatsConnection, domain = 'email'): Promise<string> {
  const jsm = await nc.jetstreamManager();
  const log = await jsm.streams.info(logStream(domain)).then(
    (i) => `${i.state.first_seq}..${i.state.last_seq}`,
    () => 'no log',
  );
  const bucket = await SnapshotBucket.find(nc.jetstream(), jsm, domain, 1);
  const snaps = bucket ? (await bucket.list()).map((s) => s.name).join(',') : 'no bucket';
  return `${log} | ${snaps}`;
}

t.after(async (ctx) => {
  await ctx.source?.hosts?.stop().catch(() => undefined);
  await ctx.source?.nc.close().catch(() => undefined);
  await ctx.source?.nats.destroy();
  await ctx.target?.hosts?.stop().catch(() => undefined);
  await ctx.target?.nc.close().catch(() => undefined);
  await ctx.target?.nats.destroy();
  rmSync(ctx.dir, { recursive: true, force: true });
});

t('backup - taken from a live cluster while writers run: one file at one applied seq, verified without a cluster', async (ctx) => {
  const nats = await startNatsServer();
  const nc = await natsConnect({ servers: nats.url });
  ctx.source = { nats, nc };
  // Two of the three hosts: the backup needs a leader, and one standby shows it is the leader's copy.
  const hosts = await startHosts({ config: config([nats.url], 1), nodes: RESTORED });
  ctx.source.hosts = hosts;
  const client = await connect({ connection: nc, agent: 'backup-test', direct: true });
  const rule = await client.remember({ text: RULE, subject: 'user', predicate: 'meeting_rule', object: 'not before 10' }, { domain: 'email' });
  await client.close();
  const writers = await startWriters([nats.url], { count: 3, everyMs: 5, domain: 'email' });
  try {
    await writers.waitForAcks(100);
    const target = ['--servers', nats.url, '--nodes', RESTORED.join(',')];
    const run = await backup(['email', '--out', ctx.dir, '--json', ...target]);
    assert.is(run.code, 0, run.err);
    const r = JSON.parse(run.out) as BackupResult;
    const acksAtEnd = writers.acks.length;
    await writers.waitForAcks(30);
    ctx.backup = r;
    ctx.file = r.path;
    assert.is(r.node, 'mini-1', 'the leader took it');
    assert.ok(r.seq > rule.seq, `seq ${r.seq} holds the rule written at ${rule.seq}`);
    assert.ok(writers.acks.length > acksAtEnd, 'writes went on after the backup');
    assert.match(r.path!, /email-seq\d+-\d{8}T\d{6}Z\.smbackup$/);
    const { header } = readBackupHeader(r.path!);
    assert.is(header.domain, 'email');
    assert.is(header.seq, r.seq);
    assert.is(header.node, 'mini-1');
    assert.ok(header.format > 0 && header.digest.length > 0 && /^\d+\.\d+\.\d+/.test(header.shardmindVersion));
    assert.is(statSync(r.path!).size, r.bytes);
    // The transfer object is gone once the file is written.
    const bucket = await SnapshotBucket.open(nc.jetstream(), 'email', 1, undefined, 'sm_backup_email');
    assert.is((await bucket.list()).length, 0, 'the backup bucket is left empty');
    // The domain's own snapshots and log are untouched by a backup.
    assert.match(await domainState(nc), /^1\.\.\d+ \| no bucket$/);

    // --all: every domain the hosts run (no config here), one file each, into the directory.
    const allDir = join(ctx.dir, 'all');
    const all = await backup(['--all', '--out', allDir, '--json', ...target]);
    assert.is(all.code, 0, all.err);
    const each = JSON.parse(all.out) as BackupResult[];
    assert.equal(each.map((x) => x.domain), ['email']);
    assert.equal(readdirSync(allDir), [each[0]!.path!.split('/').at(-1)]);
    rmSync(allDir, { recursive: true });

    const verified = await backup(['--verify', r.path!]);
    assert.is(verified.code, 0, verified.err);
    assert.match(verified.out, `email at seq ${r.seq}`);
    assert.match(verified.out, `digest ${header.digest}`);
  } finally {
    await writers.stop();
  }
  assert.equal(readdirSync(ctx.dir), [ctx.file!.split('/').at(-1)], 'nothing else left beside the file');
});

t('restore - refused into a domain whose log holds facts, and of a file of another domain; nothing changes', async (ctx) => {
  const { nc, nats } = ctx.source!;
  const before = await domainState(nc);
  const target = ['--servers', nats.url, '--nodes', RESTORED.join(',')];
  const into = await restore([ctx.file!, ...target]);
  assert.is(into.code, 1);
  assert.match(into.err, 'CONFLICT');
  assert.match(into.err, /the email log already holds data: \d+ messages \(seq 1–\d+\), a (batch|assert) entry at seq \d+/);
  assert.match(into.err, 'nothing was changed');
  const other = await restore([ctx.file!, '--domain', 'calendar', ...target]);
  assert.is(other.code, 1);
  assert.match(other.err, 'BAD_REQUEST');
  assert.match(other.err, 'holds a backup of email, not calendar');
  assert.is(await domainState(nc), before, 'the log and snapshots are as they were');
  // The source cluster is not needed any more.
  await ctx.source!.hosts!.stop();
});

t('backup --verify and restore - a truncated, damaged or foreign file is refused clearly, changing nothing', async (ctx) => {
  const file = ctx.file!;
  const truncated = join(ctx.dir, 'truncated.smbackup');
  copyFileSync(file, truncated);
  truncateSync(truncated, statSync(file).size - 4096);
  const damaged = join(ctx.dir, 'damaged.smbackup');
  copyFileSync(file, damaged);
  const fd = openSync(damaged, 'r+');
  writeSync(fd, Buffer.from([0xff, 0x00, 0xff]), 0, 3, statSync(file).size - 5000);
  closeSync(fd);
  const foreign = join(ctx.dir, 'notes.txt');
  writeFileSync(foreign, 'not a backup at all\n');
  const halfHeader = join(ctx.dir, 'half.smbackup');
  writeFileSync(halfHeader, readFileSync(file).subarray(0, 40));

  const cases: [string, RegExp][] = [
    [truncated, /truncated: \d+ bytes of store data, the header says \d+/],
    [damaged, /SHA-256 is .*the header says .*damaged/],
    [foreign, /not a shardmind backup/],
    [halfHeader, /header line is cut off/],
  ];
  for (const [path, why] of cases) {
    const v = await backup(['--verify', path]);
    assert.is(v.code, 1, path);
    assert.match(v.err, 'BAD_REQUEST');
    assert.match(v.err, why);
  }
  // A missing, foreign or truncated file is refused before restore connects: no cluster needed to say so.
  for (const [path, why] of [...cases.filter(([p]) => p !== damaged), [join(ctx.dir, 'missing.smbackup'), /cannot read it \(ENOENT\)/] as [string, RegExp]]) {
    const r = await restore([path, '--servers', 'nats://127.0.0.1:1', '--nodes', 'mini-1']);
    assert.is(r.code, 1);
    assert.match(r.err, why);
  }
  // Against a cluster, too: refused before anything is touched (a fresh server, so "nothing" is easy to see).
  const fresh = await startNatsServer();
  const nc = await natsConnect({ servers: fresh.url });
  try {
    for (const [path, why] of cases) {
      const r = await restore([path, '--servers', fresh.url, '--nodes', NODES.join(',')]);
      assert.is(r.code, 1);
      assert.match(r.err, why);
    }
    assert.is(await domainState(nc), 'no log | no bucket');
  } finally {
    await nc.close();
    await fresh.destroy();
  }
  for (const [path] of cases) rmSync(path);
  assert.equal(readdirSync(ctx.dir).length, 1, 'no work directory left behind');
});

t('restore - into a fresh R3 cluster: refused while hosts run it, then every replica installs the backup, recall finds a fact, writes go on top', async (ctx) => {
  const nats = await startNatsCluster(3);
  const nc = await natsConnect({ servers: nats.urls, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  await waitForJetStream(nc);
  // Hosts start the domain once (its log then holds their leadership markers), as a fresh cluster's would.
  ctx.target = { nats, nc };
  // Two hosts (the log is R3 on the three servers): the leader and one standby, both of which must install it.
  const hosts = await startHosts({ config: config(nats.urls, 3), nodes: RESTORED, readyTimeoutMs: 60_000 });
  ctx.target.hosts = hosts;
  const args = [ctx.file!, '--config', hosts.configPath];
  const running = await restore(args);
  assert.is(running.code, 1);
  assert.match(running.err, 'UNAVAILABLE');
  assert.match(running.err, /email runs on mini-1 \(leading\), mini-2 \(following\): stop the hosts/);
  // Stopped, each hands what it leads to a standby: more markers, still no facts.
  for (const node of RESTORED) await hosts.host(node).stop();
  const markersOnly = await domainState(nc);
  const dry = await restore([...args, '--dry-run', '--json']);
  assert.is(dry.code, 0, dry.err);
  assert.is((JSON.parse(dry.out) as RestoreResult).dryRun, true);
  assert.is(await domainState(nc), markersOnly, 'a dry run changes nothing');

  const done = await restore([...args, '--json']);
  assert.is(done.code, 0, done.err);
  const r = JSON.parse(done.out) as RestoreResult;
  const seq = ctx.backup!.seq;
  assert.is(r.seq, seq);
  assert.is(r.digest, ctx.backup!.header!.digest);
  assert.ok(r.logLastBefore >= 1 && r.logLastBefore < seq, `the log held ${r.logLastBefore} markers`);
  assert.is(await domainState(nc), `${seq + 1}..${seq} | snapshot-${String(seq).padStart(15, '0')}`);
  // Run again (as after an interruption): it finds its own work done and changes nothing more.
  const twice = await restore([...args, '--json']);
  assert.is(twice.code, 0, twice.err);
  assert.is((JSON.parse(twice.out) as RestoreResult).placeholders, 0);
  assert.is(await domainState(nc), `${seq + 1}..${seq} | snapshot-${String(seq).padStart(15, '0')}`);

  // The hosts come back behind the log's first entry: each installs the backup (its digest checked), then serves.
  await Promise.all(RESTORED.map((node) => hosts.host(node).start(60_000)));
  for (const node of RESTORED) {
    assert.match(hosts.host(node).stderr(), `installed snapshot snapshot-${String(seq).padStart(15, '0')}: seq ${seq}, digest ${r.digest.slice(0, 12)}`);
  }
  const client = await connect({ connection: nc, agent: 'restore-test', direct: true });
  try {
    const found = await client.recall({ query: 'meetings before 10', subject: 'user', domain: 'email' });
    assert.ok(found.facts.some((f) => f.text === RULE), `recall finds the rule: ${JSON.stringify(found.facts.map((f) => f.text))}`);
    const after = await client.remember({ text: 'The user moved the weekly sync to Tuesdays', subject: 'user', predicate: 'sync_day', object: 'tuesday' }, { domain: 'email' });
    assert.ok(after.seq > seq + 1, `a new write at ${after.seq} lands after the backup's ${seq} and the new leader's marker`);
  } finally {
    await client.close();
  }
  const ds = await eventually('both replicas at one sequence', async () => {
    const d = await digests(nc, RESTORED, 'email');
    return d.every((x) => x.appliedSeq === d[0]!.appliedSeq) ? d : undefined;
  });
  assert.is(ds[0]!.digest, ds[1]!.digest, 'every replica has one digest');
  // A second restore now finds the restored domain's own writes in its log.
  const again = await restore(args);
  assert.is(again.code, 1);
  assert.match(again.err, /UNAVAILABLE|CONFLICT/);
});

t.run();
