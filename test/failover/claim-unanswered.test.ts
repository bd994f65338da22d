/**
 * A claim whose epoch bucket does not answer gives up within its bound and follows the leader it then hears, instead
 * of waiting on the bucket (decisions §83; chaos soak seed 8001: a restarted mini-1 sat in `claiming` for a minute).
 *
 * Real processes throughout: three nats-servers, two `shardmind host`s (mini-3 is never started, so no third
 * candidate races). The epoch bucket is made R1 before the hosts start, so one nats-server (K) holds it and a SIGSTOP
 * of K leaves the KV unanswered while the R3 log keeps its majority; no host connects to K first. mini-1 leads email;
 * kill -9 of mini-1 makes mini-2 the leader; mini-2 is then frozen (SIGSTOP) and mini-1 restarted, and K is frozen as
 * mini-1's actor starts: mini-1 hears no leader for a lease and goes to the bucket for an epoch, which does not
 * answer. Once mini-2 is resumed (its beats heard again) mini-1 must follow it while K is still frozen. The claim
 * that retried the bucket until it answered stayed in `claiming` for as long as K was frozen.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, type NatsConnection } from 'nats';
import { startNatsCluster, waitForJetStream, type NatsCluster } from '../../cli/index.ts';
import type { ClusterConfigInput } from '../../config/index.ts';
import { EPOCH_BUCKET } from '../../protocol/index.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';
import { eventually, figures, leaderOf, shardOn } from './fault-kit.ts';

const LEASE_MS = 3_000;
/** How soon after the leader's beats resume the claimant must be following it (the claim's bounds are 5 s per KV attempt). */
const FOLLOW_WITHIN_MS = 12_000;

test('a claim whose epoch bucket does not answer steps aside for the leader it hears again, while the bucket is still frozen', async () => {
  let nats: NatsCluster | undefined;
  let nc: NatsConnection | undefined;
  let hosts: HostCluster | undefined;
  const frozen = new Set<{ kill(signal: NodeJS.Signals): void }>();
  try {
    nats = await startNatsCluster(3);
    nc = await connect({ servers: nats.urls, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    await waitForJetStream(nc);
    await nc.jetstream().views.kv(EPOCH_BUCKET, { history: 1, replicas: 1 });
    const jsm = await nc.jetstreamManager({ checkAPI: false });
    const holderName = (await jsm.streams.info(`KV_${EPOCH_BUCKET}`)).cluster?.leader;
    const bucketServer = nats.servers.find((s) => s.name === holderName);
    assert.ok(bucketServer, `the R1 epoch bucket is on one of the servers (${holderName})`);
    const others = nats.servers.filter((s) => s !== bucketServer).map((s) => s.url);
    // Our own connection must not sit on K either: status requests go through it.
    await nc.close();
    nc = await connect({ servers: others, maxReconnectAttempts: -1, reconnectTimeWait: 100 });

    const config: ClusterConfigInput = {
      cluster: { name: 'claim-unanswered' },
      nodes: [
        { name: 'mini-1', nats: [others[0]!, others[1]!, bucketServer.url] },
        { name: 'mini-2', nats: [others[1]!, others[0]!, bucketServer.url] },
        { name: 'mini-3', nats: [...others, bucketServer.url] },
      ],
      domains: [{ name: 'email', description: 'mail', seeds: ['send an email'] }],
      placement: { email: { leader: 'mini-1', standbys: ['mini-2', 'mini-3'] } },
      replication: { replicas: 3, leaseMs: LEASE_MS, heartbeatMs: 250 },
    };
    hosts = await startHosts({ config, nodes: ['mini-1', 'mini-2'], readyTimeoutMs: 60_000 });
    const mini1 = hosts.host('mini-1');
    const mini2 = hosts.host('mini-2');
    await eventually('mini-1 leading email', async () => ((await leaderOf(nc!, 'email', ['mini-1', 'mini-2']))?.node === 'mini-1' ? true : undefined), 30_000);

    mini1.kill('SIGKILL');
    await mini1.waitExit();
    const took = await eventually('mini-2 leading email', async () => {
      const l = await leaderOf(nc!, 'email', ['mini-2']);
      return l?.node === 'mini-2' ? l.view.epoch : undefined;
    }, 30_000);

    // mini-2 frozen: mini-1, restarted, hears no leader and goes to the bucket.
    mini2.kill('SIGSTOP');
    frozen.add(mini2);
    const logBefore = mini1.stderr().length;
    mini1.launch();
    // K frozen once mini-1's actor exists: its host has opened the bucket by then, and only the claim asks it.
    await eventually('mini-1 starting its email actor', async () => (/\[mini-1 email starting\] → starting/.test(mini1.stderr().slice(logBefore)) ? true : undefined), 60_000);
    bucketServer.kill('SIGSTOP');
    frozen.add(bucketServer);
    await eventually('mini-1 asking the bucket for an epoch', async () => (/\[mini-1 email claiming\] → claiming/.test(mini1.stderr().slice(logBefore)) ? true : undefined), 30_000);
    // Past its lease wait (mini-2 is silent) and into the epoch claim.
    await new Promise((r) => setTimeout(r, LEASE_MS + 1_000));
    const claimingBefore = await shardOn(nc, 'mini-1', 'email');

    mini2.kill('SIGCONT');
    frozen.delete(mini2);
    const resumedAt = Date.now();
    let seen: string | undefined;
    const followed = await eventually(
      'mini-1 following mini-2 while the bucket is frozen',
      async () => {
        const v = await shardOn(nc!, 'mini-1', 'email');
        seen = v ? `${v.state}${v.lastError ? ` (${v.lastError})` : ''}` : 'no answer';
        return v?.state === 'following' ? Date.now() - resumedAt : undefined;
      },
      FOLLOW_WITHIN_MS,
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; mini-1 was ${seen}:\n${mini1.stderr().slice(logBefore).slice(-6_000)}`);
    });
    const sinceRestart = mini1.stderr().slice(logBefore);

    bucketServer.kill('SIGCONT');
    frozen.delete(bucketServer);
    const leader = await eventually('a leader of email once the bucket answers', () => leaderOf(nc!, 'email', ['mini-1', 'mini-2']), 30_000);
    await mini1.waitReady(30_000);
    await mini2.waitReady(30_000);
    figures('claim-unanswered', { mini2Epoch: took, claimingBefore: claimingBefore?.state, followedAfterMs: followed, leaderAfter: leader.node, epochAfter: leader.view.epoch });

    assert.is(claimingBefore?.state, 'claiming', 'mini-1 was claiming while the bucket was frozen');
    // Each step of a claim that waits says where: the epoch claim's attempts, and the line that ends the claim.
    // What the first attempt met varies with the moment (not answered in time, a TIMEOUT, a 503 from a server that
    // sees no bucket leader): that it is logged is the point.
    assert.match(sinceRestart, /epoch claim attempt 1 failed: \S/);
    assert.match(sinceRestart, /claiming: still claiming an epoch in KV after \d+ ms/);
    assert.match(sinceRestart, /claim gave up at claiming an epoch in KV \(.*\) after \d+ ms \(.*claiming an epoch in KV \d+ ms\)/);
  } finally {
    for (const p of frozen) p.kill('SIGCONT');
    await hosts?.stop();
    await nc?.close().catch(() => undefined);
    await nats?.destroy();
  }
});

test.run();
