/**
 * SIGTERM of the leader's host while 4 writers run (a restart, an upgrade): before it exits, the host hands the shard
 * to a caught-up standby (actors/drain-hand-off.ts), so writers see a hand-off gap, well under the lease, instead of
 * the lease running out and an election (kill-leader measures ~2 s for that). No client error, no lost write; the
 * host exits 0, and when it comes back it follows the new leader.
 */
// test-runner: alone (asserts the write gap against the lease: run by itself, test/run.ts)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DOMAIN, eventually, figures, leaderOf, logChain, longestAckGap, missingAcks, shardOn, withFaultCluster } from './fault-kit.ts';

const LEASE_MS = 1500;

test('SIGTERM of the leader host - it hands the shard to a standby first: a gap well under the lease, nothing lost', async () => {
  await withFaultCluster(
    async (cluster, load) => {
      const { nc, nats, hosts } = cluster;
      const before = await eventually('a leader of email', () => leaderOf(nc));
      assert.is(before.node, 'mini-1', 'the placement leader leads');
      const writers = await load();
      await writers.waitForAcks(200);

      const stoppedAt = Date.now();
      const mini1 = hosts.host('mini-1');
      await mini1.stop();
      const exitCode = await mini1.waitExit();
      const sigtermToExitMs = Date.now() - stoppedAt;
      const after = await eventually('a new leader', async () => {
        const l = await leaderOf(nc, DOMAIN, ['mini-2', 'mini-3']);
        return l && l.view.epoch > before.view.epoch ? l : undefined;
      });
      await writers.waitForAcks(200);
      const gapMs = longestAckGap(writers.acks, stoppedAt, Date.now());

      // Back after its restart, it follows the leader it handed the shard to.
      await mini1.start(30_000);
      const rejoinedAs = await eventually('the restarted host to follow', async () => {
        const v = await shardOn(nc, 'mini-1');
        return v && v.state === 'following' ? v : undefined;
      });
      await writers.waitForAcks(100);
      await writers.stop();

      const missing = await missingAcks(nats.urls, writers.acks);
      const chain = await logChain(nc);
      figures('sigterm-hand-off', {
        writeGapMs: gapMs,
        sigtermToExitMs,
        newLeader: after.node,
        epoch: after.view.epoch,
        acknowledged: writers.acks.length,
        clientErrors: writers.errors.length,
        clientRetries: writers.retryCodes(),
        lostAcknowledged: missing.length,
        chainBreaks: chain.breaks.length,
      });
      assert.is(exitCode, 0, mini1.stderr());
      assert.match(mini1.stderr(), `handed ${DOMAIN} to mini-2`);
      assert.is(after.node, 'mini-2', 'the first ready standby in preference order takes the shard');
      assert.is(rejoinedAs.role, 'follower');
      assert.equal(writers.errors, [], 'no error reached a client');
      assert.equal(missing, [], 'every acknowledged write is on the new leader');
      assert.equal(chain.breaks, [], 'the log stays one chain across the hand-off');
      assert.ok(gapMs < LEASE_MS, `write gap ${gapMs} ms: the standby should lead before the lease would have lapsed`);
    },
    { leaseMs: LEASE_MS },
  );
});

test.run();
