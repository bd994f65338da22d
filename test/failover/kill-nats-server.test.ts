/**
 * kill -9 of the nats-server that leads the shard's stream, while 4 writers run: JetStream elects a new stream
 * leader among the two left, hosts and clients reconnect to the surviving servers, writes continue, and no
 * acknowledged write is lost. Then the server comes back and catches up.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { logStream } from '../../protocol/index.ts';
import {
  DOMAIN,
  eventually,
  figures,
  leaderOf,
  longestAckGap,
  missingAcks,
  withFaultCluster,
} from './fault-kit.ts';

test('kill -9 of the stream leader nats-server - writes continue after the election, none lost', async () => {
  await withFaultCluster(async (cluster, load) => {
    const { nc, nats } = cluster;
    await eventually('a leader of email', () => leaderOf(nc));
    const writers = await load();
    await writers.waitForAcks(150);

    const jsm = await nc.jetstreamManager({ checkAPI: false });
    const info = await jsm.streams.info(logStream(DOMAIN));
    const streamLeader = info.cluster?.leader;
    const victim = nats.servers.find((s) => s.name === streamLeader);
    assert.ok(victim, `stream leader ${streamLeader} is one of ${nats.servers.map((s) => s.name).join(', ')}`);
    const killedAt = Date.now();
    victim.kill('SIGKILL');
    await victim.waitExit();

    const newStreamLeader = await eventually(
      'a new stream leader',
      async () => {
        const i = await jsm.streams.info(logStream(DOMAIN));
        return i.cluster?.leader && i.cluster.leader !== streamLeader ? i.cluster.leader : undefined;
      },
      20_000,
    );
    const electedMs = Date.now() - killedAt;
    await writers.waitForAcks(200, 30_000);
    const resumedMs = (writers.acks.find((a) => a.startedAt > killedAt + electedMs)?.ackedAt ?? Date.now()) - killedAt;

    await victim.start();
    await writers.waitForAcks(100, 30_000);
    await writers.stop();
    const missing = await missingAcks(nats.urls, writers.acks);
    figures('kill-nats-server', {
      killedServer: streamLeader,
      newStreamLeader,
      electionMs: electedMs,
      writesResumedAfterMs: resumedMs,
      writeGapMs: longestAckGap(writers.acks, killedAt, killedAt + resumedMs + 1_000),
      acknowledged: writers.acks.length,
      clientErrors: writers.errors.length,
      clientRetries: writers.retryCodes(),
      lostAcknowledged: missing.length,
    });
    assert.equal(writers.errors, [], 'no error reached a client');
    assert.equal(missing, [], 'no acknowledged write is lost');
  });
});

test.run();
