/**
 * Log compaction on a real 3-node cluster with host processes: `shardmind compact` snapshots the leader's store and
 * moves the log's first sequence; a follower whose data dir was wiped (and which was killed with SIGKILL) bootstraps
 * from the snapshot and ends with the leader's digest; old snapshots are pruned; the automatic trigger compacts a
 * domain configured with a small threshold; bad input to the command gets a clear error code.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { runCompact, type CompactResult } from '../../cli/index.ts';
import { ErrorCode } from '../../protocol/index.ts';
import { ctl, digests, eventually, missingAcks, waitAllApplied } from '../failover/fault-kit.ts';
import { NODES, compactionConfig, logBoundsOf, rememberFacts, snapshotsOf, startCompactionCluster, strayDirs } from './kit.ts';

/** Runs `shardmind compact` in-process, capturing what it prints. */
async function compactCli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCompact(args, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}

/** The error code a control request was refused with. */
async function refusal(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  }
}

test('compaction - compact moves the first seq, a wiped follower bootstraps from the snapshot, old snapshots go, the trigger fires, bad input is refused', async () => {
  const cluster = await startCompactionCluster((urls) =>
    compactionConfig(urls, {
      domains: [{ name: 'files', description: 'documents', seeds: ['save the file'], compaction: { everyEntries: 10, retainEntries: 2 } }],
      placement: { files: { leader: 'mini-2', standbys: ['mini-3', 'mini-1'] } },
    }),
  );
  const { nc, hosts } = cluster;
  const urls = cluster.nats.urls;
  const target = ['--servers', urls.join(','), '--nodes', NODES.join(',')];
  try {
    const acks = await rememberFacts(urls, 'email', 150);
    const tail = await waitAllApplied(nc, NODES, 20_000, 'email');
    assert.is((await logBoundsOf(nc, 'email')).firstSeq, 1, 'nothing compacted yet');

    // Bad input: a clear code each time, and nothing changes.
    assert.is(await refusal(ctl(nc, 'mini-1', 'compact', {})), ErrorCode.BAD_REQUEST);
    assert.is(await refusal(ctl(nc, 'mini-1', 'compact', { domain: 'nope' })), ErrorCode.UNKNOWN_DOMAIN);
    assert.is(await refusal(ctl(nc, 'mini-2', 'compact', { domain: 'email' })), ErrorCode.NOT_LEADER, 'a follower does not compact');
    const badName = await compactCli(['Bad Domain!', ...target]);
    assert.is(badName.code, 1);
    assert.match(badName.err, 'BAD_REQUEST');
    const unknown = await compactCli(['nope', '--config', hosts.configPath]);
    assert.is(unknown.code, 1);
    assert.match(unknown.err, 'UNKNOWN_DOMAIN');
    assert.is((await compactCli([])).code, 2, 'no domain: usage');
    assert.is((await compactCli(['email', '--timeout', 'soon', ...target])).code, 2, 'a --timeout that is not a duration: usage');
    assert.is((await logBoundsOf(nc, 'email')).firstSeq, 1, 'refused commands purged nothing');

    // Compact: a snapshot at the leader's applied seq; the log keeps only that seq (retainEntries 1).
    const run = await compactCli(['email', '--json', ...target]);
    assert.is(run.code, 0, run.err);
    const report = JSON.parse(run.out) as CompactResult;
    assert.is(report.node, 'mini-1');
    assert.is(report.seq, tail);
    assert.ok(tail > 3, `the log holds ${tail} messages`);
    assert.is(report.firstSeq, tail);
    assert.is(report.purged, tail - 1);
    const bounds = await logBoundsOf(nc, 'email');
    assert.is(bounds.firstSeq, tail, "the stream's first seq moved");
    const snaps = await snapshotsOf(nc, 'email');
    assert.is(snaps.length, 1);
    const leaderDigest = (await ctl<{ appliedSeq: number; digest: string }>(nc, 'mini-1', 'digest', { domain: 'email' })).digest;
    assert.is(snaps[0]!.meta.seq, tail);
    assert.is(snaps[0]!.meta.digest, leaderDigest, "the snapshot's content digest is the leader's");

    // A follower loses its disk and crashes: it comes back with nothing, the log no longer starts at 1.
    const follower = hosts.host('mini-3');
    follower.kill('SIGKILL');
    await follower.waitExit();
    rmSync(join(hosts.dataDir, 'mini-3'), { recursive: true, force: true });
    await follower.start(60_000);
    assert.match(follower.stderr(), `installed snapshot`, 'it bootstrapped from the snapshot');
    assert.match(follower.stderr(), '→ bootstrapping');
    // More writes after it rejoined reach it through the log.
    acks.push(...(await rememberFacts(urls, 'email', 30, 'after')));
    await waitAllApplied(nc, NODES, 20_000, 'email');
    const ds = await digests(nc, NODES, 'email');
    assert.ok(ds.every((d) => d.digest === ds[0]!.digest && d.appliedSeq === ds[0]!.appliedSeq), `digests differ: ${JSON.stringify(ds)}`);
    assert.equal(await missingAcks(urls, acks, 'email'), [], 'every acknowledged write is readable');

    // Two more compactions: two snapshots are kept, the oldest is deleted.
    const second = await ctl<CompactResult>(nc, 'mini-1', 'compact', { domain: 'email' }, 60_000);
    assert.is(second.pruned?.length ?? 0, 0);
    await rememberFacts(urls, 'email', 5, 'third');
    const third = await ctl<CompactResult>(nc, 'mini-1', 'compact', { domain: 'email' }, 60_000);
    assert.equal(third.pruned, [snaps[0]!.name]);
    assert.equal((await snapshotsOf(nc, 'email')).map((s) => s.meta.seq), [second.seq, third.seq]);

    // The automatic trigger: `files` compacts itself once 10 log messages were applied since its last snapshot (one
    // write at a time: each its own message).
    await rememberFacts(urls, 'files', 12, 'doc', 1);
    const auto = await eventually('an automatic snapshot of files', async () => {
      const s = await snapshotsOf(nc, 'files');
      return s.length > 0 ? s : undefined;
    }, 30_000);
    assert.ok(auto[0]!.meta.seq >= 10, `snapshot at ${auto[0]!.meta.seq}`);
    assert.is(auto[0]!.meta.node, 'mini-2', 'the leader took it');
    await eventually('the files log to be purged', async () => ((await logBoundsOf(nc, 'files')).firstSeq > 1 ? true : undefined), 10_000);

    // The automatic compaction removes its local copy last (after the purge and the pruning).
    await eventually('no copy or download left beside any store', async () => (NODES.every((n) => strayDirs(hosts.dataDir, n).length === 0) ? true : undefined), 10_000);
  } catch (err) {
    process.stderr.write(hosts.stderr().slice(-15_000));
    throw err;
  } finally {
    await cluster.destroy();
  }
});

test.run();
