/**
 * Replica reads while leadership changes: writers keep remembering through the leader while readers on every
 * server keep reading from replicas, and the shard is migrated (mini-1 → mini-2), then its leader's host is killed
 * (SIGKILL) and a standby takes over, then the killed host comes back. Every answer must be right or a retryable
 * error, never a wrong one:
 * - read-your-writes: each reader writes a fact through the leader and at once reads it back from a replica (its
 *   own Mini's first) with `minSeq` — the fact is always there;
 * - the staleness bound: a `get` of the latest write acknowledged before the request was sent may be NOT_FOUND only
 *   if the replica admitted being at least that stale (`staleMs`);
 * - errors reaching a raw reader are retryable (or NATS timeouts / no responders, which a client retries).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { NatsConnection } from 'nats';
import { migrateShard } from '../../cli/index.ts';
import { connect, type ShardmindClient } from '../../client/index.ts';
import { replicaSubject } from '../../protocol/index.ts';
import { DOMAIN, NODES, eventually, figures, leaderOf, startWriters, withFaultCluster, type Ack } from '../failover/fault-kit.ts';
import { ask, connectTo, type ReadReply } from './kit.ts';

/** How much earlier than its send time a read's bound is checked (clock reads and scheduling on one machine). */
const SLACK_MS = 5;

interface Tally {
  readonly rywReads: number;
  readonly rywViolations: string[];
  readonly boundChecks: number;
  readonly boundViolations: string[];
  readonly notFoundAdmitted: number;
  readonly errors: Record<string, number>;
  readonly nonRetryable: string[];
  readonly servedBy: Record<string, number>;
}

function newTally(): Tally {
  return { rywReads: 0, rywViolations: [], boundChecks: 0, boundViolations: [], notFoundAdmitted: 0, errors: {}, nonRetryable: [], servedBy: {} };
}

/** Each reader: its own client on its own server, naming its node, writing then reading its write from a replica. */
async function rywLoop(client: ShardmindClient, reader: number, running: () => boolean, t: Tally): Promise<void> {
  for (let k = 0; running(); k++) {
    try {
      const w = await client.remember({ text: `reader ${reader} check ${k}`, subject: `reader-${reader}-${k}`, predicate: 'checked', object: 'yes' }, { domain: DOMAIN });
      const r = await client.recall({ subject: `reader-${reader}-${k}`, domain: DOMAIN, maxStaleMs: 1_000 });
      (t as { rywReads: number }).rywReads++;
      t.servedBy[r.servedBy ?? 'none'] = (t.servedBy[r.servedBy ?? 'none'] ?? 0) + 1;
      if (!r.facts.some((f) => f.id === w.factId)) t.rywViolations.push(`reader ${reader}: ${w.factId} (seq ${w.seq}) missing from ${r.servedBy}'s answer`);
    } catch (err) {
      // After the client's own retries (10 s): counted; the assertion is on wrong answers, not on availability.
      const code = (err as { code?: string }).code ?? 'unknown';
      t.errors[`ryw:${code}`] = (t.errors[`ryw:${code}`] ?? 0) + 1;
    }
  }
}

/** Raw `get`s of the latest acknowledged write, any replica, no minSeq: NOT_FOUND only if the bound admits it. */
async function boundLoop(nc: NatsConnection, acks: readonly Ack[], running: () => boolean, t: Tally): Promise<void> {
  while (running()) {
    const sentAt = Date.now();
    const latest = acks[acks.length - 1];
    if (!latest) {
      await new Promise((r) => setTimeout(r, 10));
      continue;
    }
    try {
      const r = await ask<ReadReply>(nc, replicaSubject(DOMAIN, 'get'), { v: 1, factId: latest.factId, maxStaleMs: 1_000 }, { timeoutMs: 1_500 });
      (t as { boundChecks: number }).boundChecks++;
      if (r.error) {
        if (r.error.code === 'NOT_FOUND') {
          const stale = r.staleMs ?? 0;
          if (latest.ackedAt < sentAt - stale - SLACK_MS) {
            t.boundViolations.push(`${latest.factId} acked ${sentAt - latest.ackedAt} ms before the read, NOT_FOUND on ${r.servedBy} claiming staleMs ${stale}`);
          } else (t as { notFoundAdmitted: number }).notFoundAdmitted++;
        } else {
          t.errors[`get:${r.error.code}`] = (t.errors[`get:${r.error.code}`] ?? 0) + 1;
          if (!r.error.retryable) t.nonRetryable.push(`${r.error.code}: ${r.error.message}`);
        }
      } else {
        t.servedBy[r.servedBy ?? 'none'] = (t.servedBy[r.servedBy ?? 'none'] ?? 0) + 1;
      }
    } catch (err) {
      const code = String((err as { code?: string }).code ?? 'unknown'); // TIMEOUT or 503 (no responders): retryable
      t.errors[`get:nats-${code}`] = (t.errors[`get:nats-${code}`] ?? 0) + 1;
      if (code !== 'TIMEOUT' && code !== '503') t.nonRetryable.push(`NATS ${code}`);
    }
    await new Promise((r) => setTimeout(r, 15));
  }
}

test('replica reads through a migration and a leader crash: right answers or retryable errors, never wrong ones', async () => {
  await withFaultCluster(async (cluster) => {
    const { nc, nats, hosts } = cluster;
    await eventually('mini-1 to lead email', async () => ((await leaderOf(nc))?.node === 'mini-1' ? true : undefined), 30_000);
    const writers = await startWriters(nats.urls, { count: 2, everyMs: 25 });
    const conns: NatsConnection[] = [];
    const clients: ShardmindClient[] = [];
    const t = newTally();
    let running = true;
    let loops: Promise<void>[] = [];
    try {
      for (let i = 0; i < NODES.length; i++) {
        const c = await connectTo(nats.urls[i]!, nats.urls);
        conns.push(c);
        clients.push(await connect({ connection: c, agent: `reader-${i}`, node: NODES[i]!, direct: true, timeoutMs: 1_000 }));
      }
      loops = [
        ...clients.map((c, i) => rywLoop(c, i, () => running, t)),
        ...conns.map((c) => boundLoop(c, writers.acks, () => running, t)),
      ];
      await writers.waitForAcks(60);

      const jsm = await nc.jetstreamManager({ checkAPI: false });
      const migrated = await migrateShard(nc, jsm, { domain: DOMAIN, to: 'mini-2', nodes: NODES, timeoutMs: 30_000 });
      assert.is((await leaderOf(nc))?.node, 'mini-2');
      await writers.waitForAcks(60);

      const killedAt = Date.now();
      hosts.host('mini-2').kill('SIGKILL');
      const after = await eventually(
        'a standby to take over from mini-2',
        async () => {
          const l = await leaderOf(nc, DOMAIN, ['mini-1', 'mini-3']);
          return l && l.view.epoch > migrated.epoch ? l : undefined;
        },
        20_000,
      );
      const takeoverMs = Date.now() - killedAt;
      await writers.waitForAcks(60);
      await hosts.host('mini-2').start(60_000);
      await writers.waitForAcks(60);
    } finally {
      running = false;
      await Promise.all(loops);
      await writers.stop();
      for (const c of clients) await c.close().catch(() => undefined);
      for (const c of conns) await c.close().catch(() => undefined);
    }
    figures('replica-reads-under-change', {
      acknowledgedWrites: writers.acks.length,
      rywReads: t.rywReads,
      boundChecks: t.boundChecks,
      notFoundAdmittedByBound: t.notFoundAdmitted,
      servedBy: t.servedBy,
      errors: t.errors,
    });
    assert.equal(t.rywViolations, [], 'read-your-writes held on every replica answer');
    assert.equal(t.boundViolations, [], 'no answer was staler than it said');
    assert.equal(t.nonRetryable, [], 'every error was retryable');
    assert.ok(t.rywReads >= 30 && t.boundChecks >= 30, `reads went on (${t.rywReads} ryw, ${t.boundChecks} bound checks)`);
    assert.ok(Object.keys(t.servedBy).filter((n) => n !== 'none').length >= 2, `several replicas answered: ${JSON.stringify(t.servedBy)}`);
  });
});

test.run();
