/**
 * `shardmind migrate` when the hand-off does not go as planned, as a person runs it (the CLI spawned against three
 * Minis with host processes, 4 writers throughout). The target killed as the hand-off goes out: another standby
 * leads within a lease or two, and the command says so and exits 1 at once instead of waiting out its whole
 * `--timeout` to print only TIMEOUT (review session 11, finding 6). The leader killed right after it wrote the
 * hand-off marker: the target leads, and the command reports the move instead of waiting 15 s for an answer that
 * cannot come and then saying UNAVAILABLE. No acknowledged write lost, no client error.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { migrateShard } from '../../cli/index.ts';
import type { ShardmindError } from '../../protocol/index.ts';
import { DOMAIN, NODES, eventually, leaderOf, missingAcks, withFaultCluster } from '../failover/fault-kit.ts';
import type { NatsConnection } from 'nats';
import { decodeEntry, entriesOf } from '../../actors/index.ts';
import { logSubject } from '../../protocol/index.ts';
import type { HostCluster } from '../harness/hosts.ts';

const BIN = join(import.meta.dirname, '..', '..', 'cli', 'bin.mjs');

interface Run {
  readonly code: number | null;
  readonly out: string;
  readonly err: string;
  /** From the moment the victim was killed to the command's exit. */
  readonly afterKillMs: number;
}

/**
 * Runs `shardmind migrate email --to <to>` and kills `victim`'s host (SIGKILL) the moment the hand-off marker is
 * published to the log (a core subscription on the log subject sees it as it is stored, before the target applies
 * it): after the leader checked the target and wrote the marker, which is when the reviewer's kills landed.
 */
function migrateKilling(nc: NatsConnection, hosts: HostCluster, to: string, victim: string, timeout: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    let killedAt: number | undefined;
    const sub = nc.subscribe(logSubject(DOMAIN), {
      callback: (_err, m) => {
        const message = decodeEntry(m.data);
        if (killedAt !== undefined || !message) return;
        if (entriesOf(message).some((e) => e.op === 'marker' && e.kind === 'handoff' && e.to === to)) {
          killedAt = Date.now();
          hosts.host(victim).kill('SIGKILL');
        }
      },
    });
    void nc.flush().then(() => {
      const child = spawn(process.execPath, [BIN, 'migrate', DOMAIN, '--to', to, '--timeout', timeout, '--no-probe', '--config', hosts.configPath], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      const guard = setTimeout(() => child.kill('SIGKILL'), 120_000);
      child.stdout.on('data', (d: Buffer) => void (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => void (err += d.toString()));
      child.once('error', reject);
      child.once('exit', (code) => {
        clearTimeout(guard);
        sub.unsubscribe();
        resolve({ code, out, err, afterKillMs: killedAt === undefined ? -1 : Date.now() - killedAt });
      });
    }, reject);
  });
}

test('migrate - the target killed at the hand-off: exit 1 within seconds, naming the node that leads now and its epoch', async () => {
  await withFaultCluster(async (cluster, load) => {
    const { nc, hosts, nats } = cluster;
    await eventually('a leader of email', () => leaderOf(nc));
    const writers = await load();
    await writers.waitForAcks(100);

    // A target that stops answering just before the hand-off: the leader refuses (UNAVAILABLE) and nothing changes;
    // the command says so at once, not after its budget.
    const jsm = await nc.jetstreamManager({ checkAPI: false });
    const stoppedAt = Date.now();
    const refused = await migrateShard(nc, jsm, {
      domain: DOMAIN,
      to: 'mini-2',
      nodes: NODES,
      timeoutMs: 60_000,
      probe: false,
      onProgress: (p) => void (p.phase === 'handing off' && hosts.host('mini-2').kill('SIGSTOP')),
    }).then(
      () => undefined,
      (err: ShardmindError) => err,
    );
    hosts.host('mini-2').kill('SIGCONT');
    assert.is(refused?.code, 'UNAVAILABLE', String(refused));
    assert.match(refused!.message, /did not answer its status/);
    assert.ok(Date.now() - stoppedAt < 20_000, `refused after ${Date.now() - stoppedAt} ms (the budget was 60 s)`);
    assert.is((await eventually('a leader', () => leaderOf(nc))).node, 'mini-1', 'nothing changed');

    // The target dies as the hand-off goes out; the budget is a minute, the answer must come long before.
    const killed = await migrateKilling(nc, hosts, 'mini-2', 'mini-2', '60s');
    assert.ok(killed.afterKillMs >= 0, `the hand-off marker was written: ${killed.out}${killed.err}`);
    assert.is(killed.code, 1, killed.out + killed.err);
    const now = await eventually('a leader after the failed hand-off', () => leaderOf(nc));
    assert.is.not(now.node, 'mini-2');
    assert.match(
      killed.err,
      new RegExp(`^migrate failed: SHARD_MOVED: the hand-off of email to mini-2 did not complete; ${now.node} now leads email \\(epoch ${now.view.epoch}\\)\\. No acknowledged write was lost`),
    );
    assert.ok(killed.afterKillMs < 20_000, `exit ${killed.afterKillMs} ms after the kill (the budget was 60 s)`);

    await hosts.host('mini-2').restart();
    await writers.waitForAcks(100);

    // The leader dies right after it wrote the marker: the target takes over from the marker, and the command
    // reports the move without waiting for the answer the leader may never send (it waited 15 s, then said UNAVAILABLE).
    const leader = now.node;
    const target = 'mini-2';
    const lost = await migrateKilling(nc, hosts, target, leader, '60s');
    assert.ok(lost.afterKillMs >= 0, `the hand-off marker was written: ${lost.out}${lost.err}`);
    assert.is(lost.code, 0, lost.out + lost.err);
    const after = await eventually('a leader after the leader was killed', () => leaderOf(nc));
    assert.is(after.node, target, lost.out);
    assert.match(lost.out, new RegExp(`email: ${leader} → ${target}, epoch ${after.view.epoch}`));
    assert.ok(lost.afterKillMs < 12_000, `exit ${lost.afterKillMs} ms after the leader was killed (it waited 15 s for its answer)`);
    await hosts.host(leader).restart();

    await writers.waitForAcks(100);
    await writers.stop();
    assert.is(writers.errors.length, 0, `client errors: ${writers.errors.slice(0, 3).map((e) => e.message).join("; ")}`);
    assert.equal(await missingAcks(nats.urls, writers.acks), [], 'no acknowledged write lost');
  });
});

test.run();
