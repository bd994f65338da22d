/**
 * SIGSTOP of the leader's host: a standby takes over; after SIGCONT the old leader's next append is fenced (or it
 * hears the later epoch first) and it steps down to follow; once caught up every replica has the same content
 * digest, and no acknowledged write is lost.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  DOMAIN,
  NODES,
  digests,
  eventually,
  figures,
  leaderOf,
  longestAckGap,
  missingAcks,
  shardOn,
  waitAllApplied,
  withFaultCluster,
} from './fault-kit.ts';

test('SIGSTOP of the leader host - a standby takes over; the woken leader is fenced and converges', async () => {
  await withFaultCluster(async (cluster, load) => {
    try {
      const { nc, nats, hosts } = cluster;
      const before = await eventually('a leader of email', () => leaderOf(nc));
      assert.is(before.node, 'mini-1');
      const writers = await load();
      await writers.waitForAcks(150);

      const pausedAt = Date.now();
      hosts.host('mini-1').kill('SIGSTOP');
      const after = await eventually(
        'a standby to take over',
        async () => {
          const l = await leaderOf(nc, DOMAIN, ['mini-2', 'mini-3']);
          return l && l.view.epoch > before.view.epoch ? l : undefined;
        },
        15_000,
      );
      const takeoverMs = Date.now() - pausedAt;
      // The new leader takes writes while the old one sleeps (its subscription still holds requests for it).
      await writers.waitForAcks(150);

      const resumedAt = Date.now();
      hosts.host('mini-1').kill('SIGCONT');
      const stepped = await eventually(
        'the old leader to step down and follow',
        async () => {
          const v = await shardOn(nc, 'mini-1');
          return v && v.role === 'follower' && v.state === 'following' ? v : undefined;
        },
        15_000,
      );
      const stepDownMs = Date.now() - resumedAt;
      await writers.waitForAcks(100);
      await writers.stop();

      await waitAllApplied(nc, NODES, 15_000);
      const ds = await digests(nc, NODES);
      const missing = await missingAcks(nats.urls, writers.acks);
      figures('pause-leader-host', {
        takeoverMs,
        stepDownAfterResumeMs: stepDownMs,
        writeGapMs: longestAckGap(writers.acks, pausedAt, resumedAt + stepDownMs),
        newLeader: after.node,
        epoch: after.view.epoch,
        oldLeaderReason: stepped.lastError ?? '',
        acknowledged: writers.acks.length,
        clientErrors: writers.errors.length,
        clientRetries: writers.retryCodes(),
        lostAcknowledged: missing.length,
        digestsEqual: new Set(ds.map((d) => d.digest)).size === 1,
      });
      assert.match(stepped.lastError ?? '', /fenced|deposed|epoch/i, 'the old leader says why it stepped down');
      assert.equal(writers.errors, [], 'no error reached a client');
      assert.equal(missing, [], 'every acknowledged write is on the new leader');
      assert.is(new Set(ds.map((d) => d.appliedSeq)).size, 1, JSON.stringify(ds));
      assert.is(new Set(ds.map((d) => d.digest)).size, 1, `replica digests differ: ${JSON.stringify(ds)}`);
    } finally {
      cluster.hosts.host('mini-1').kill('SIGCONT'); // never leave a stopped process behind
    }
  });
});

test.run();
