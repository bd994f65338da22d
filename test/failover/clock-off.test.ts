/**
 * A Mini whose wall clock is ten minutes ahead (review-session11b, finding 8): it leads email at start, and as leader
 * it would stamp every fact's `recordedAt` ten minutes in the future. The clock is made wrong the way a real one is,
 * for the whole host process: libfaketime (`faketime` on Debian, `brew install libfaketime` on macOS) shifts its
 * `Date.now()`; its monotonic clock stays real, as NTP leaves it. Checks: the other hosts' clocks outvote it and
 * `status` says so; it hands email to a standby whose clock is right, with writes going on; facts stamped after that
 * are stamped on time; and when the Mini leading both domains is killed, the off Mini — first standby of files —
 * takes nothing, although only one peer is left to disagree with it.
 */
import { existsSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runStatus } from '../../cli/index.ts';
import { connect } from '../../client/index.ts';
import type { ClusterConfigInput } from '../../config/index.ts';
import { ctl, eventually, figures, leaderOf, longestAckGap, missingAcks, startThreeMinis, startWriters, threeMiniConfig, type FaultCluster } from './fault-kit.ts';

const AHEAD_S = 600;
const FAKETIME_LIB = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1'].find(existsSync);

/** mini-3's host runs with its wall clock `AHEAD_S` ahead; its monotonic clock is left alone. */
const aheadOnMini3 = (node: string): Record<string, string> | undefined =>
  node === 'mini-3' && FAKETIME_LIB ? { LD_PRELOAD: FAKETIME_LIB, FAKETIME: `+${AHEAD_S}s`, FAKETIME_DONT_FAKE_MONOTONIC: '1' } : undefined;

/** email led by the off Mini at start; files led by mini-1 with the off Mini as its first standby. */
function config(urls: readonly string[]): ClusterConfigInput {
  const c = threeMiniConfig(urls);
  return {
    ...c,
    placement: {
      email: { leader: 'mini-3', standbys: ['mini-1', 'mini-2'] },
      files: { leader: 'mini-1', standbys: ['mini-3', 'mini-2'] },
    },
  };
}

interface ClockStatus {
  readonly clock?: { readonly offsetMs?: number; readonly peers: number; readonly off: boolean };
}

test('a host whose clock is 10 min ahead hands off what it leads and takes nothing, even when one peer is left', async () => {
  assert.ok(FAKETIME_LIB, 'libfaketime is not installed: apt-get install -y faketime (.ci/run does), or brew install libfaketime');
  let cluster: FaultCluster | undefined;
  let writers: Awaited<ReturnType<typeof startWriters>> | undefined;
  try {
    cluster = await startThreeMinis(config, { envOf: aheadOnMini3 });
    const { nc, nats, hosts } = cluster;
    writers = await startWriters(nats.urls, { count: 2 });

    // The other two outvote it within a few beats; neither of them is judged off.
    const off = await eventually('mini-3 judged off', async () => {
      const s = await ctl<ClockStatus>(nc, 'mini-3', 'status', {}, 1_000);
      return s.clock?.off ? s.clock : undefined;
    });
    assert.ok(Math.abs((off.offsetMs ?? 0) - AHEAD_S * 1000) < 5_000, `offset ${off.offsetMs} ms, ~${AHEAD_S} s expected`);
    for (const node of ['mini-1', 'mini-2']) {
      const c = await eventually(`${node} to hear both peers`, async () => {
        const s = await ctl<ClockStatus>(nc, node, 'status', {}, 1_000);
        return s.clock?.peers === 2 ? s.clock : undefined;
      });
      assert.is(c.off, false, `${node}'s clock is right`);
      assert.ok(Math.abs(c.offsetMs ?? Infinity) < 5_000, `${node}: of its two peers' readings, the one nearer its own clock: ${c.offsetMs}`);
    }

    // It hands email to its first standby (right clock), under the writers, without losing an acknowledged write.
    const handedAt = Date.now();
    const moved = await eventually('email led by mini-1', async () => ((await leaderOf(nc))?.node === 'mini-1' ? true : undefined), 20_000);
    assert.ok(moved);
    await writers.waitForAcks(100);
    const handOffGapMs = longestAckGap(writers.acks, handedAt, Date.now());

    // A fact written now is stamped with the right time.
    const client = await connect({ servers: nats.urls, agent: 'clock-test', direct: true });
    try {
      const stored = await client.remember({ text: 'the standup moved to 10:30', subject: 'standup', predicate: 'time', object: '10:30' }, { domain: 'email' });
      const fact = await client.get(stored.factId, { domain: 'email' });
      assert.ok(fact, `fact ${stored.factId} reads back`);
      const skewMs = fact.recordedAt.getTime() - Date.now();
      assert.ok(Math.abs(skewMs) < 5_000, `recordedAt ${fact.recordedAt.toISOString()} is ${skewMs} ms from now`);
    } finally {
      await client.close();
    }

    // `shardmind status` names the host and what it does about it.
    const out: string[] = [];
    const code = await runStatus(['--config', hosts.configPath, '--servers', nats.urls.join(',')], { out: (x) => void out.push(x), err: () => undefined });
    assert.is(code, 0);
    assert.match(out.join(''), /WARNING: mini-3's clock is 10 min ahead of the other hosts' \(2 peers\)\. It takes no leadership/);

    // mini-1 leads both domains; kill it. files' first standby is mini-3: it must leave files to mini-2, although
    // mini-2 is now the only peer it hears.
    hosts.host('mini-1').kill('SIGKILL');
    await hosts.host('mini-1').waitExit();
    const killedAt = Date.now();
    for (const domain of ['files', 'email']) {
      const l = await eventually(`a leader of ${domain} after the kill`, async () => {
        const v = await leaderOf(nc, domain, ['mini-2', 'mini-3']);
        return v?.node === 'mini-2' || v?.node === 'mini-3' ? v : undefined;
      });
      assert.is(l.node, 'mini-2', `${domain} goes to the Mini whose clock is right`);
    }
    const failoverMs = Date.now() - killedAt;
    // Once mini-1 has been silent for a few beats, mini-2 is the only peer mini-3 hears: still off.
    const onePeer = await eventually('mini-3 to hear one peer', async () => {
      const s = await ctl<ClockStatus>(nc, 'mini-3', 'status', {}, 1_000);
      return s.clock?.peers === 1 ? s.clock : undefined;
    });
    assert.is(onePeer.off, true, 'with one peer left, mini-3 is still off: nothing says its clock was fixed');
    await new Promise((r) => setTimeout(r, 3_000)); // three more lease lengths: files and email stay on mini-2
    for (const domain of ['files', 'email']) assert.is((await leaderOf(nc, domain, ['mini-2', 'mini-3']))?.node, 'mini-2', `${domain} still on mini-2`);

    await writers.waitForAcks(50);
    await writers.stop();
    const missing = await missingAcks(nats.urls, writers.acks);
    assert.is(missing.length, 0, `acknowledged writes missing: ${missing.map((a) => a.factId).join(', ')}`);
    figures('clock-off', { offsetMs: off.offsetMs, handOffGapMs, failoverMs, acks: writers.acks.length });
  } catch (err) {
    if (cluster) process.stderr.write(cluster.hosts.stderr().slice(-20_000));
    throw err;
  } finally {
    await writers?.stop().catch(() => undefined);
    await cluster?.destroy();
  }
});

test.run();
