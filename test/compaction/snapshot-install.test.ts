/**
 * Snapshots end to end without hosts, on a real nats-server and real LMDB files: a copy of an open store taken while
 * it is written holds one committed state; a snapshot that does not hold what its metadata says is refused and the
 * replica's store is left as it was; a good one replaces the store whole (same seq, tail hash, digest); what an
 * interrupted install leaves beside the store is cleared; a snapshot taken at a higher log level than the replica
 * understands is refused before anything is downloaded, and so is one of another store format.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { startNatsServer, waitForJetStream, type NatsServerProcess } from '../../cli/index.ts';
import { NeedsUpgradeError, SnapshotBucket, SnapshotFormatError, clearInstallLeftovers, copyStore, inspectStoreCopy, installNewestSnapshot, type SnapshotMeta } from '../../actors/index.ts';
import { FORMAT, openShardStore, type AssertEntry, type ShardStore } from '../../shards/index.ts';

interface Ctx {
  server: NatsServerProcess;
  nc: NatsConnection;
  dir: string;
}
const t = suite<Ctx>('snapshot install', {} as Ctx);

t.before(async (ctx) => {
  ctx.server = await startNatsServer();
  ctx.nc = await connect({ servers: ctx.server.url });
  await waitForJetStream(ctx.nc);
  ctx.dir = mkdtempSync(join(tmpdir(), 'shardmind-snapshot-'));
});
t.after(async (ctx) => {
  await ctx.nc?.close();
  await ctx.server?.destroy();
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

function entry(i: number): AssertEntry {
  return { v: 1, op: 'assert', opId: `op-${i}`, recordedAt: 1_760_000_000_000 + i, source: { agent: 'test' }, fact: { text: `note ${i} about the inbox`, subject: 'user', predicate: 'noted', object: String(i) } };
}

async function storeWith(path: string, count: number): Promise<ShardStore> {
  const store = openShardStore({ path, domain: 'email' });
  for (let i = 1; i <= count; i += 50) {
    const batch = Array.from({ length: Math.min(50, count - i + 1) }, (_, j) => ({ seq: i + j, entry: entry(i + j) }));
    await store.applyBatch(batch, { tailHash: `hash-${batch[batch.length - 1]!.seq}` });
  }
  return store;
}

t('a copy taken while the store is written holds one committed state, and names its seq, tail hash and digest', async (ctx) => {
  const path = join(ctx.dir, 'writing');
  const store = await storeWith(path, 200);
  try {
    // Writes keep committing while the copy is made: the copy is whichever commit it started from, never a mix.
    const writing = (async () => {
      for (let i = 201; i <= 400; i += 10) {
        await store.applyBatch(Array.from({ length: 10 }, (_, j) => ({ seq: i + j, entry: entry(i + j) })), { tailHash: `hash-${i + 9}` });
      }
    })();
    const copyDir = join(ctx.dir, 'writing-copy');
    await copyStore(path, copyDir);
    await writing;
    const facts = await inspectStoreCopy(copyDir, { domain: 'email' });
    assert.ok(facts.appliedSeq >= 200 && facts.appliedSeq <= 400 && facts.appliedSeq % 10 === 0, `copied at ${facts.appliedSeq}`);
    assert.is(facts.tailHash, `hash-${facts.appliedSeq}`);
    // The same entries applied to a fresh store give the same digest: the copy is exactly that state.
    const replay = await storeWith(join(ctx.dir, 'replay'), facts.appliedSeq);
    assert.is(facts.digest, replay.digest());
    await replay.close();
  } finally {
    await store.close();
  }
});

t('a snapshot that does not hold what it says is refused and the store is left as it was; a good one replaces it whole', async (ctx) => {
  const js = ctx.nc.jetstream();
  const bucket = await SnapshotBucket.open(js, 'email', 1);
  // The leader's store at seq 120, copied as compaction copies it.
  const leaderPath = join(ctx.dir, 'leader');
  const leader = await storeWith(leaderPath, 120);
  const copyDir = join(ctx.dir, 'leader-copy');
  const file = await copyStore(leaderPath, copyDir);
  const facts = await inspectStoreCopy(copyDir, { domain: 'email' });
  const meta: SnapshotMeta = {
    v: 1, domain: 'email', seq: facts.appliedSeq, tailHash: facts.tailHash!, format: facts.format!, digest: facts.digest,
    epoch: 0, node: 'mini-1', takenAt: new Date().toISOString(), bytes: 0,
  };
  // A replica behind it, at seq 30.
  const replicaPath = join(ctx.dir, 'replica');
  const replica = await storeWith(replicaPath, 30);
  const replicaDigest = replica.digest();
  let closed = 0;
  const install = () =>
    installNewestSnapshot({
      bucket,
      storePath: replicaPath,
      storeOptions: { domain: 'email' },
      logFirstSeq: 100,
      position: 30,
      logLevel: 2,
      closeStore: async () => {
        closed++;
        await replica.close();
      },
      log: () => undefined,
    });
  try {
    await bucket.put(file, { ...meta, digest: 'f'.repeat(64) });
    const refused = await install().then(() => undefined, (e: unknown) => e as { code?: string; message: string });
    assert.is(refused?.code, 'INTERNAL');
    assert.match(refused!.message, 'content digest');
    assert.is(closed, 0, 'the store was not closed');
    assert.is(replica.digest(), replicaDigest, 'nor changed');
    assert.equal(readdirSync(ctx.dir).filter((n) => n.startsWith('replica-')), [], 'the download is gone');

    // A snapshot that stops short of the log is of no use either.
    await bucket.put(file, meta);
    const short = await installNewestSnapshot({ bucket, storePath: replicaPath, storeOptions: { domain: 'email' }, logFirstSeq: 500, position: 30, logLevel: 2, closeStore: async () => void closed++, log: () => undefined }).then(
      () => undefined,
      (e: unknown) => e as { code?: string; message: string },
    );
    assert.is(short?.code, 'UNAVAILABLE');
    assert.match(short!.message, 'does not reach the log');
    assert.is(closed, 0);

    const installed = await install();
    assert.is(installed.seq, 120);
    assert.is(closed, 1);
    const reopened = openShardStore({ path: replicaPath, domain: 'email' });
    assert.is(reopened.appliedSeq, 120);
    assert.is(reopened.tailHash(), 'hash-120');
    assert.is(reopened.digest(), leader.digest());
    await reopened.close();
    assert.equal(readdirSync(ctx.dir).filter((n) => n.startsWith('replica-')), [], 'nothing left beside the store');
  } finally {
    await leader.close();
    await replica.close();
  }
});

t('a snapshot taken at a higher log level than the replica understands is refused on the listing it would install', async (ctx) => {
  const js = ctx.nc.jetstream();
  const bucket = await SnapshotBucket.open(js, 'levels', 1);
  const leaderPath = join(ctx.dir, 'levels-leader');
  const leader = await storeWith(leaderPath, 60);
  const file = await copyStore(leaderPath, join(ctx.dir, 'levels-leader-copy'));
  const facts = await inspectStoreCopy(join(ctx.dir, 'levels-leader-copy'), { domain: 'email' });
  const meta: SnapshotMeta = {
    v: 1, domain: 'levels', seq: facts.appliedSeq, tailHash: facts.tailHash!, format: facts.format!, digest: facts.digest,
    epoch: 0, node: 'mini-1', takenAt: new Date().toISOString(), bytes: 0,
  };
  const replicaPath = join(ctx.dir, 'levels-replica');
  const replica = await storeWith(replicaPath, 10);
  const replicaDigest = replica.digest();
  let closed = 0;
  const install = (logLevel: number) =>
    installNewestSnapshot({
      bucket,
      storePath: replicaPath,
      storeOptions: { domain: 'email' },
      logFirstSeq: 40,
      position: 10,
      logLevel,
      closeStore: async () => {
        closed++;
        await replica.close();
      },
      log: () => undefined,
    });
  try {
    // No logLevel in the metadata: taken after group commit, so level 2.
    await bucket.put(file, meta);
    const refused = await install(1).then(() => undefined, (e: unknown) => e);
    assert.instance(refused, NeedsUpgradeError);
    assert.is((refused as NeedsUpgradeError).message, `needs upgrade: snapshot at level 2 (seq ${meta.seq}), this build understands 1`);
    await bucket.put(file, { ...meta, logLevel: 3 });
    const newer = await install(2).then(() => undefined, (e: unknown) => e);
    assert.instance(newer, NeedsUpgradeError);
    assert.is((newer as NeedsUpgradeError).level, 3);
    assert.is(closed, 0, 'the store was not closed');
    assert.is(replica.digest(), replicaDigest, 'nor changed');
    assert.not.ok(existsSync(`${replicaPath}-incoming`), 'nothing was downloaded');

    await bucket.put(file, { ...meta, logLevel: 1 });
    const installed = await install(1);
    assert.is(installed.seq, 60, 'a snapshot at the level the replica understands installs');
    assert.is(closed, 1);
  } finally {
    await leader.close();
    await replica.close();
  }
});

t('a snapshot of another store format is refused on its metadata, before anything is downloaded', async (ctx) => {
  const js = ctx.nc.jetstream();
  const bucket = await SnapshotBucket.open(js, 'formats', 1);
  const leaderPath = join(ctx.dir, 'formats-leader');
  const leader = await storeWith(leaderPath, 60);
  const file = await copyStore(leaderPath, join(ctx.dir, 'formats-leader-copy'));
  const facts = await inspectStoreCopy(join(ctx.dir, 'formats-leader-copy'), { domain: 'email' });
  const meta: SnapshotMeta = {
    v: 1, domain: 'formats', seq: facts.appliedSeq, tailHash: facts.tailHash!, format: facts.format!, digest: facts.digest,
    epoch: 0, node: 'mini-1', takenAt: new Date().toISOString(), bytes: 0,
  };
  const replicaPath = join(ctx.dir, 'formats-replica');
  const replica = await storeWith(replicaPath, 10);
  const replicaDigest = replica.digest();
  let closed = 0;
  const logged: string[] = [];
  const install = () =>
    installNewestSnapshot({
      bucket,
      storePath: replicaPath,
      storeOptions: { domain: 'email' },
      logFirstSeq: 40,
      position: 10,
      logLevel: 2,
      closeStore: async () => {
        closed++;
        await replica.close();
      },
      log: (line) => logged.push(line),
    });
  try {
    assert.is(facts.format, FORMAT);
    for (const format of [FORMAT - 2, FORMAT + 1]) {
      await bucket.put(file, { ...meta, format });
      const refused = await install().then(() => undefined, (e: unknown) => e);
      assert.instance(refused, SnapshotFormatError);
      assert.match((refused as Error).message, `is store format ${format}, this version reads format ${FORMAT}`);
      assert.match((refused as Error).message, format > FORMAT ? 'upgrade shardmind' : 'run the version that took it');
    }
    assert.equal(logged.filter((line) => line.startsWith('downloading')), [], 'nothing was downloaded');
    assert.not.ok(existsSync(`${replicaPath}-incoming`));
    assert.is(closed, 0, 'the store was not closed');
    assert.is(replica.digest(), replicaDigest, 'nor changed');

    await bucket.put(file, meta);
    const installed = await install();
    assert.is(installed.seq, 60, 'a snapshot of this format installs');
    assert.is(closed, 1);
  } finally {
    await leader.close();
    await replica.close();
  }
});

t("an interrupted install's leftovers are cleared", (ctx) => {
  const path = join(ctx.dir, 'crashed');
  for (const suffix of ['-incoming', '-replaced']) {
    mkdirSync(`${path}${suffix}`, { recursive: true });
    writeFileSync(join(`${path}${suffix}`, 'data.mdb'), 'half');
  }
  clearInstallLeftovers(path);
  assert.not.ok(existsSync(`${path}-incoming`));
  assert.not.ok(existsSync(`${path}-replaced`));
});

t.run();
