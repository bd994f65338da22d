/**
 * Log compaction while the shard is in use, on a real 3-node cluster with host processes: writers keep writing
 * through three compactions and a follower that is killed (SIGKILL) before them and restarted after them — it
 * bootstraps from the snapshot, since the log no longer holds what it needs — and nothing acknowledged is lost; then
 * a migration to a Mini that holds nothing of the domain, after a compaction, bootstraps the target and hands over.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { migrateShard, type CompactResult } from '../../cli/index.ts';
import { ctl, digests, eventually, figures, missingAcks, shardOn, startWriters, waitAllApplied } from '../failover/fault-kit.ts';
import { NODES, compactionConfig, logBoundsOf, rememberFacts, snapshotsOf, startCompactionCluster } from './kit.ts';

test('compaction - writes go on through compactions and a follower down across them bootstraps; nothing acknowledged is lost; a migration to an empty Mini after compaction works', async () => {
  const cluster = await startCompactionCluster((urls) =>
    compactionConfig(urls, {
      // `notes` has no replica on mini-3: the migration target starts with nothing.
      domains: [{ name: 'notes', description: 'notes', seeds: ['write a note'] }],
      placement: { notes: { leader: 'mini-1', standbys: ['mini-2'] } },
    }),
  );
  const { nc, hosts } = cluster;
  const urls = cluster.nats.urls;
  const writers = await startWriters(urls, { count: 3, everyMs: 15, domain: 'email' });
  try {
    await writers.waitForAcks(60);
    // mini-3 goes down before the compactions and comes back after them.
    const down = hosts.host('mini-3');
    down.kill('SIGKILL');
    await down.waitExit();
    const reports: CompactResult[] = [];
    for (let i = 0; i < 3; i++) {
      await writers.waitForAcks(40);
      reports.push(await ctl<CompactResult>(nc, 'mini-1', 'compact', { domain: 'email' }, 60_000));
    }
    const seqs = reports.map((r) => r.seq);
    assert.ok(seqs[0]! < seqs[1]! && seqs[1]! < seqs[2]!, `each compaction is further along: ${seqs.join(', ')}`);
    const bounds = await logBoundsOf(nc, 'email');
    assert.ok(bounds.firstSeq >= seqs[2]!, `the log starts at ${bounds.firstSeq}, at or past the last snapshot (${seqs[2]})`);
    await down.start(60_000);
    await writers.waitForAcks(40);
    await writers.stop();
    assert.match(down.stderr(), '[mini-3 email bootstrapping] → bootstrapping', 'the returning follower bootstrapped');
    assert.equal(writers.errors, [], 'no write failed (the clients retried what they had to)');
    assert.equal(await missingAcks(urls, writers.acks, 'email'), [], 'every acknowledged write is readable');
    await waitAllApplied(nc, NODES, 30_000, 'email');
    const ds = await digests(nc, NODES, 'email');
    assert.ok(ds.every((d) => d.digest === ds[0]!.digest && d.appliedSeq === ds[0]!.appliedSeq), `digests differ: ${JSON.stringify(ds)}`);
    assert.equal((await snapshotsOf(nc, 'email')).map((s) => s.meta.seq), seqs.slice(1), 'the newest two snapshots are kept');
    figures('compact-under-load', { acks: writers.acks.length, snapshots: seqs, firstSeq: bounds.firstSeq, compactMs: reports.map((r) => r.ms) });

    // A migration to a Mini that has nothing of `notes`, after compaction: it bootstraps, catches up, and leads.
    const notes = await rememberFacts(urls, 'notes', 60, 'note');
    const compacted = await ctl<CompactResult>(nc, 'mini-1', 'compact', { domain: 'notes' }, 60_000);
    assert.ok(compacted.firstSeq > 1, 'the notes log was compacted');
    assert.is(await shardOn(nc, 'mini-3', 'notes'), undefined, 'mini-3 holds nothing of notes');
    const jsm = await nc.jetstreamManager({ checkAPI: false });
    const moved = await migrateShard(nc, jsm, { domain: 'notes', to: 'mini-3', nodes: [...NODES], probe: false, timeoutMs: 60_000 });
    assert.is(moved.from, 'mini-1');
    assert.is(moved.unchanged, false);
    assert.match(down.stderr(), '[mini-3 notes bootstrapping] → bootstrapping', 'the target bootstrapped from the snapshot');
    await eventually('mini-3 to lead notes', async () => ((await shardOn(nc, 'mini-3', 'notes'))?.state === 'leading' ? true : undefined));
    notes.push(...(await rememberFacts(urls, 'notes', 10, 'moved')));
    assert.equal(await missingAcks(urls, notes, 'notes'), [], 'every note is readable from the new leader');
    const replicas = ['mini-1', 'mini-2', 'mini-3'];
    await waitAllApplied(nc, replicas, 20_000, 'notes');
    const nd = await digests(nc, replicas, 'notes');
    assert.ok(nd.every((d) => d.digest === nd[0]!.digest), `notes digests differ: ${JSON.stringify(nd)}`);
  } catch (err) {
    process.stderr.write(hosts.stderr().slice(-15_000));
    throw err;
  } finally {
    await writers.stop().catch(() => undefined);
    await cluster.destroy();
  }
});

test.run();
