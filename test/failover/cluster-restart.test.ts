/**
 * Stop and restart the whole cluster — three hosts and three nats-servers — after a run of writes: every
 * acknowledged write is still there, the placement leader leads again, and the replicas agree byte for byte.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  NODES,
  digests,
  eventually,
  figures,
  leaderOf,
  missingAcks,
  shardOn,
  withFaultCluster,
  streamTail,
  waitAllApplied,
} from './fault-kit.ts';

test('whole cluster restart - every acknowledged write survives; replicas converge', async () => {
  await withFaultCluster(async (cluster, load) => {
    const { nc, nats, hosts } = cluster;
    await eventually('a leader of email', () => leaderOf(nc));
    const writers = await load();
    await writers.waitForAcks(400);
    await writers.stop();
    const tailBefore = await streamTail(nc);

    const stoppedAt = Date.now();
    await Promise.all(hosts.hosts.map((h) => h.stop()));
    await Promise.all(nats.servers.map((s) => s.stop()));
    await Promise.all(nats.servers.map((s) => s.start()));
    await Promise.all(hosts.hosts.map((h) => h.start(60_000)));
    const leader = await eventually('a leader of email after the restart', () => leaderOf(nc), 30_000);
    const restartMs = Date.now() - stoppedAt;

    const tailAfter = await waitAllApplied(nc, NODES, 15_000);
    const missing = await missingAcks(nats.urls, writers.acks);
    const ds = await digests(nc, NODES);
    figures('cluster-restart', {
      acknowledged: writers.acks.length,
      lostAcknowledged: missing.length,
      tailBefore,
      tailAfter,
      restartToLeaderMs: restartMs,
      leader: leader.node,
      digestsEqual: new Set(ds.map((d) => d.digest)).size === 1,
    });
    assert.equal(missing, [], 'every acknowledged write is still there');
    assert.ok(tailAfter >= tailBefore, 'the log kept every entry');
    assert.is(new Set(ds.map((d) => d.digest)).size, 1, `replica digests differ: ${JSON.stringify(ds)}`);
  });
});

test.run();
