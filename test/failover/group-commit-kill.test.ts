/**
 * Group commit under a leader kill: 32 writers with no pause between writes, so the leader puts many writes into each
 * log message; `kill -9` of the leader's host mid-stream; a standby takes over. Every acknowledged write is on the
 * new leader, no client saw an error, the log's hash chain holds across leaders, and when the killed host is back
 * every replica applies the whole log to the same content digest — grouped messages replay identically.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeEntry } from '../../actors/index.ts';
import { logStream } from '../../protocol/index.ts';
import {
  DOMAIN,
  NODES,
  digests,
  eventually,
  figures,
  leaderOf,
  logChain,
  missingAcks,
  startWriters,
  waitAllApplied,
  withFaultCluster,
  type Writers,
} from './fault-kit.ts';

test('group commit - kill -9 of the leader under 32 writers: grouped writes are not lost and replay to the same content', async () => {
  let writers: Writers | undefined;
  await withFaultCluster(async (cluster) => {
    const { nc, nats, hosts } = cluster;
    try {
      const before = await eventually('a leader of email', () => leaderOf(nc));
      writers = await startWriters(nats.urls, { count: 32, everyMs: 0 });
      await writers.waitForAcks(600);

      hosts.host(before.node).kill('SIGKILL');
      await hosts.host(before.node).waitExit();
      const after = await eventually(
        'a new leader',
        async () => {
          const l = await leaderOf(nc, DOMAIN, NODES.filter((n) => n !== before.node));
          return l && l.view.epoch > before.view.epoch ? l : undefined;
        },
        15_000,
      );
      await writers.waitForAcks(600);
      await writers.stop();

      const missing = await missingAcks(nats.urls, writers.acks);
      const chain = await logChain(nc);

      // How grouped the log is: writes per message, from the log itself.
      const jsm = await nc.jetstreamManager({ checkAPI: false });
      let grouped = 0;
      let writes = 0;
      for (let seq = 1; seq <= chain.entries; seq++) {
        const m = decodeEntry((await jsm.streams.getMessage(logStream(DOMAIN), { seq })).data);
        if (m?.op === 'batch') {
          grouped++;
          writes += m.entries.length;
        } else if (m?.op === 'assert') writes++;
      }

      await hosts.host(before.node).start(30_000);
      await waitAllApplied(nc, NODES, 30_000);
      const ds = await digests(nc, NODES);

      figures('group-commit-kill', {
        killed: before.node,
        newLeader: after.node,
        acknowledged: writers.acks.length,
        clientErrors: writers.errors.length,
        clientRetries: writers.retryCodes(),
        lostAcknowledged: missing.length,
        logMessages: chain.entries,
        groupedMessages: grouped,
        writesInLog: writes,
        chainBreaks: chain.breaks.length,
      });
      assert.equal(writers.errors, [], 'no error reached a client');
      assert.equal(missing, [], 'every acknowledged write is on the new leader');
      assert.equal(chain.breaks, [], 'the hash chain holds across leaders');
      assert.ok(grouped > 0, 'the leader grouped concurrent writes');
      assert.ok(writes >= writers.acks.length, `the log holds every acknowledged write (${writes} ≥ ${writers.acks.length})`);
      assert.ok(chain.entries < writes, `${writes} writes took ${chain.entries} log messages`);
      assert.is(new Set(ds.map((d) => d.digest)).size, 1, `replicas converge: ${JSON.stringify(ds)}`);
    } finally {
      await writers?.stop().catch(() => undefined);
    }
  });
});

test.run();
