/**
 * A prune over many decayed facts on three real hosts (review 11b, finding 9): the leader appends it as several log
 * entries of at most PRUNE_ENTRY_SPAN positions, each applied on its own, so no replica's event loop is held for the
 * whole prune — the leader keeps its lease and epoch throughout, every replica converges (same appliedSeq and
 * digest, one of them down during the prune and catching up over all its entries), and the pruned texts are gone
 * while a fresh fact stays. With one entry over every position (before), the report said 1 range, and a large
 * prune froze every replica at once.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect as natsConnect } from 'nats';
import { PRUNE_ENTRY_SPAN } from '../../actors/index.ts';
import { connect } from '../../client/index.ts';
import { pruneDomain } from '../../cli/index.ts';
import { digests, leaderOf, NODES, startFaultCluster, waitAllApplied } from './fault-kit.ts';

const DAY = 86_400_000;

test('prune of ~3.2 entries of decayed facts: split into entries, no leadership change, replicas converge', async () => {
  const cluster = await startFaultCluster();
  const facts = 3 * PRUNE_ENTRY_SPAN + 200;
  try {
    const conn = await natsConnect({ servers: cluster.nats.urls, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const memory = await connect({ connection: conn, agent: 'prune-split', direct: true, deadlineMs: 30_000 });
    let keepId: string;
    try {
      const observedAt = new Date(Date.now() - 3 * DAY);
      for (let i = 0; i < facts; i += 1000) {
        const batch = Array.from({ length: Math.min(1000, facts - i) }, (_, j) => ({
          text: `faded note ${i + j} topic${(i + j) % 97}`,
          subject: `u${(i + j) % 50}`,
          predicate: 'note',
          confidence: 0.2,
          observedAt,
          halfLifeDays: 0.05,
        }));
        const results = await memory.rememberMany(batch, { domain: 'email' });
        const failed = results.filter((r) => r instanceof Error);
        assert.is(failed.length, 0, `remember batch at ${i}: ${String(failed[0])}`);
      }
      keepId = (await memory.remember({ text: 'a fresh fact that must stay', subject: 'keep', predicate: 'note' }, { domain: 'email' })).factId;
    } finally {
      await memory.close();
      await conn.close();
    }
    await waitAllApplied(cluster.nc, NODES, 60_000);
    const before = await leaderOf(cluster.nc);
    assert.ok(before, 'a leader before the prune');
    // One replica is down during the prune: on its return it catches up over every prune entry at once (each applied
    // in a batch of its own, with its own tail hash).
    const late = NODES.find((n) => n !== before.node && n !== 'mini-2')!;
    await cluster.hosts.host(late).stop();

    // Leadership is watched throughout: any other leader, epoch, or a poll no host answers is recorded.
    const seen = new Set<string>();
    let watching = true;
    const watch = (async () => {
      while (watching) {
        const l = await leaderOf(cluster.nc).catch(() => undefined);
        seen.add(l ? `${l.node}@${l.view.epoch}` : 'none');
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    let report;
    try {
      report = await pruneDomain(cluster.nc, { domain: 'email', nodes: NODES, inactiveDays: 3650, decayedBelow: 0.1, timeoutMs: 60_000 });
    } finally {
      watching = false;
      await watch;
    }
    assert.is(report.pruned, facts);
    assert.ok(report.ranges >= 4, `${report.ranges} entries for ${report.positions} positions`);
    assert.equal([...seen], [`${before.node}@${before.view.epoch}`], 'the leader and its epoch never changed');

    await cluster.hosts.host(late).start(60_000);
    await waitAllApplied(cluster.nc, NODES, 60_000);
    // And once more: the chain check after a restart knows the tail the split batches stored.
    await cluster.hosts.host(late).stop();
    await cluster.hosts.host(late).start(60_000);
    await waitAllApplied(cluster.nc, NODES, 60_000);
    const d = await digests(cluster.nc, NODES);
    assert.is(new Set(d.map((x) => x.appliedSeq)).size, 1, JSON.stringify(d));
    assert.is(new Set(d.map((x) => x.digest)).size, 1, JSON.stringify(d));

    const reader = await natsConnect({ servers: cluster.nats.urls });
    const check = await connect({ connection: reader, agent: 'prune-split', direct: true });
    try {
      const faded = await check.recall({ query: 'faded note topic5', domain: 'email', minConfidence: 0, limit: 5 });
      assert.is(faded.facts.length, 0, 'no pruned text is recalled');
      const kept = await check.get(keepId);
      assert.is(kept?.text, 'a fresh fact that must stay');
    } finally {
      await check.close();
      await reader.close();
    }
  } catch (err) {
    process.stderr.write(cluster.hosts.stderr().slice(-10_000));
    throw err;
  } finally {
    await cluster.destroy();
  }
});

test.run();
