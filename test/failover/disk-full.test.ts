/**
 * A full disk under a host's data dir (review session 11b, finding 1; docs/decisions.md §62). Real tmpfs mounts (the
 * test runs as root; without `mount` it fails saying so): a small filesystem is filled until LMDB's commits fail.
 *
 * - The store alone: a failed commit rejects `applyBatch` once and leaves no rejected promise unobserved (lmdb-js left
 *   two per failed commit, and the host's unhandled-rejection handler ended the process); with space back it commits.
 * - The email leader's host on a full tmpfs, under writers of large facts: the host stays up, the shard steps down and
 *   reports why (`status` lastError), a replica with space leads, no acknowledged write is lost, and once a filler
 *   file on the same tmpfs is removed the replica catches up by itself to the others' appliedSeq and digest.
 */
// test-runner: alone (its status probe is sensitive to load: run by itself, test/run.ts)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as natsConnect, type NatsConnection } from 'nats';
import { startNatsCluster, startNatsServer, waitForJetStream, type NatsCluster } from '../../cli/index.ts';
import { connect, type ShardmindClient } from '../../client/index.ts';
import { openShardStore, type LogMessage } from '../../shards/index.ts';
import { compactShard, snapshotCopyDir } from '../../actors/compaction.ts';
import { systemClock } from '../../actors/clock.ts';
import { HostCluster } from '../harness/hosts.ts';
import { DOMAIN, NODES, digests, eventually, leaderOf, missingAcks, shardOn, threeMiniConfig, waitAllApplied, type Ack } from './fault-kit.ts';

const MiB = 1024 * 1024;

/** Mounts a tmpfs of `size` on `dir`; a box where that is not permitted fails the test with the reason. */
function mountTmpfs(dir: string, size: string): void {
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    const why = (err as { stderr?: Buffer }).stderr?.toString().trim() || (err as Error).message;
    throw new Error(`this test needs to mount a tmpfs (run it as root): mount -t tmpfs on ${dir} failed: ${why}`);
  }
}

function unmount(dir: string): void {
  try {
    execFileSync('umount', [dir], { stdio: 'pipe' });
  } catch (err) {
    process.stderr.write(`umount ${dir} failed: ${(err as Error).message}\n`);
  }
}

function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

/** Fills `dir`'s filesystem with a file until `leave` bytes are free. */
function fill(dir: string, leave: number): string {
  const filler = join(dir, 'filler');
  writeFileSync(filler, Buffer.alloc(Math.max(0, freeBytes(dir) - leave), 1));
  return filler;
}

/** Text of `chars` characters, with words that differ from fact to fact (so each one grows the index). */
function bigText(n: number, chars: number): string {
  let s = '';
  for (let i = 0; s.length < chars; i++) s += `w${(Math.imul(n * 997 + i, 2654435761) >>> 0).toString(36)} `;
  return s.slice(0, chars).trim();
}

test('a store whose disk is full rejects the commit once, leaves nothing unhandled, and commits once space returns', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sm-diskfull-store-'));
  const unhandled: string[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(String((reason as Error)?.message ?? reason));
  process.on('unhandledRejection', onUnhandled);
  mountTmpfs(dir, '16m');
  try {
    const store = openShardStore({ path: join(dir, 'email'), domain: 'email' });
    const filler = fill(dir, 3 * MiB);
    let seq = 0;
    const failures: string[] = [];
    const batchAt = (from: number) =>
      Array.from({ length: 4 }, (_, j) => ({
        seq: from + j,
        entry: { v: 1, op: 'assert', opId: `o${from + j}`, recordedAt: Date.now(), source: { agent: 'a' }, fact: { text: bigText(from + j, 8_000) } } as LogMessage,
      }));
    for (let i = 0; i < 2_000 && failures.length < 2; i++) {
      try {
        await store.applyBatch(batchAt(seq + 1));
        seq += 4;
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
    assert.ok(failures.length === 2, `commits failed on a full tmpfs (applied ${seq})`);
    assert.is(store.appliedSeq, seq, 'what failed is not applied');
    // Unhandled rejections are reported after the microtasks of the turn: give them a few turns.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(unhandled, [], 'no rejected promise left unobserved');
    rmSync(filler);
    await store.applyBatch(batchAt(seq + 1));
    assert.is(store.appliedSeq, seq + 4, 'commits again once space returned');
    await store.close();
  } finally {
    process.off('unhandledRejection', onUnhandled);
    unmount(dir);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a compaction with no room for the store copy is skipped, saying why, and runs once there is room', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sm-diskfull-compact-'));
  mountTmpfs(dir, '32m');
  const server = await startNatsServer();
  let nc: NatsConnection | undefined;
  try {
    nc = await natsConnect({ servers: server.url });
    await waitForJetStream(nc);
    const storePath = join(dir, 'email');
    const store = openShardStore({ path: storePath, domain: 'email' });
    const entries = Array.from({ length: 200 }, (_, i) => ({
      seq: i + 1,
      entry: { v: 1, op: 'assert', opId: `o${i + 1}`, recordedAt: Date.now(), source: { agent: 'a' }, fact: { text: bigText(i, 8_000) } } as LogMessage,
    }));
    await store.applyBatch(entries, { tailHash: 'tail-of-200' });
    await store.close();
    // Room for the store's size again, but not for the margin the live store's commits need beside the copy.
    const filler = fill(dir, 10 * MiB);
    const lines: string[] = [];
    const options = {
      js: nc.jetstream(),
      jsm: await nc.jetstreamManager(),
      domain: 'email',
      node: 'mini-1',
      replicas: 1,
      storePath,
      storeOptions: { domain: 'email' },
      retainEntries: 10,
      keepSnapshots: 1,
      logHashAt: async () => undefined,
      clock: systemClock,
      log: (line: string) => void lines.push(line),
    };
    const skipped = await compactShard(options).then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    assert.ok(skipped, 'the compaction is refused');
    assert.match(skipped!.message, /not compacting email: [\d.]+ MiB free under .*a snapshot copy needs [\d.]+ MiB/);
    assert.is((skipped as { code?: string }).code, 'UNAVAILABLE');
    assert.is(lines.filter((l) => l.startsWith('not compacting')).length, 1, `one log line: ${JSON.stringify(lines)}`);
    assert.not.ok(existsSync(snapshotCopyDir(storePath, 'email')), 'no copy was started');
    rmSync(filler);
    // With room, it copies and goes on (to the log check, which this log without entries cannot pass).
    const next = await compactShard(options).then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    assert.ok(next && !/MiB free/.test(next.message), `with room the copy is made: ${next?.message}`);
    assert.match(next!.message, /cannot read seq 200/);
    assert.not.ok(existsSync(snapshotCopyDir(storePath, 'email')), 'the copy was removed');
    assert.is(lines.filter((l) => l.startsWith('not compacting')).length, 1, 'not skipped the second time');
  } finally {
    await nc?.close().catch(() => undefined);
    await server.destroy();
    unmount(dir);
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * The email store of `FULL` (its placement leader, or a follower) fills its tmpfs under writers of large facts; then
 * the filler file is removed.
 */
async function fullDiskScenario(FULL: 'mini-1' | 'mini-3'): Promise<void> {
  const leads = FULL === 'mini-1';
  const dir = mkdtempSync(join(tmpdir(), 'sm-diskfull-'));
  const dataDir = join(dir, 'data');
  const fullDir = join(dataDir, FULL);
  mountTmpfs(fullDir, '48m');
  let nats: NatsCluster | undefined;
  let hosts: HostCluster | undefined;
  let nc: NatsConnection | undefined;
  const clients: { client: ShardmindClient; nc: NatsConnection }[] = [];
  let running = true;
  let loops: Promise<void>[] = [];
  try {
    nats = await startNatsCluster(3);
    nc = await natsConnect({ servers: nats.urls, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    await waitForJetStream(nc);
    const configPath = join(dir, 'cluster.config.mjs');
    writeFileSync(configPath, `export default ${JSON.stringify({ ...threeMiniConfig(nats.urls), dataDir }, null, 2)};\n`);
    hosts = new HostCluster(configPath, dataDir, join(dir, 'harness'), nats.urls, [...NODES], {}, process.env['SM_TEST_VERBOSE'] === '1');
    await Promise.all(hosts.hosts.map((h) => h.start(60_000)));
    const full = hosts.host(FULL);
    const pid = full.pid;
    assert.is((await eventually('a leader of email', () => leaderOf(nc!)))?.node, 'mini-1', 'the placement leader leads');

    const filler = fill(fullDir, 6 * MiB);
    const acks: Ack[] = [];
    for (let w = 0; w < 4; w++) {
      const wnc = await natsConnect({ servers: nats.urls, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
      clients.push({ nc: wnc, client: await connect({ connection: wnc, agent: `writer-${w}`, direct: true, deadlineMs: 20_000, timeoutMs: 2_000 }) });
    }
    let n = 0;
    loops = clients.map(async ({ client }, writer) => {
      while (running) {
        const startedAt = Date.now();
        try {
          const r = await client.remember({ text: bigText(n++, 16_000), subject: `writer-${writer}`, predicate: 'wrote' }, { domain: DOMAIN });
          acks.push({ writer, opId: r.opId, factId: r.factId, seq: r.seq, startedAt, ackedAt: Date.now() });
        } catch {
          // A write the client gave up on is not acknowledged; only acknowledged writes are checked.
        }
      }
    });

    const failing = await eventually(
      `${FULL}'s email store to report that it cannot write`,
      async () => {
        const v = await shardOn(nc!, FULL);
        return v?.lastError?.includes('store cannot write') ? v : undefined;
      },
      30_000,
    );
    assert.match(failing.lastError!, /disk may be full/);
    assert.ok(failing.state !== 'leading' && failing.state !== 'following', `${FULL} neither leads nor follows (${failing.state})`);
    // A full leader hands the domain to a replica with space; a full follower changes nothing for the others.
    const other = await eventually('a leader with space', async () => leaderOf(nc!, DOMAIN, NODES.filter((x) => x !== FULL)), 15_000);
    if (!leads) assert.is(other.node, 'mini-1', 'the leader keeps leading');
    // Writes go on through the new leader while the full replica retries.
    const before = acks.length;
    await eventually('more acknowledged writes', async () => (acks.length >= before + 20 ? true : undefined), 20_000);
    assert.ok(full.running && full.pid === pid, `${FULL}'s host is still the same running process`);
    const files = await shardOn(nc, FULL, 'files');
    assert.ok(files !== undefined && files.state !== 'failed', `${FULL}'s other shard stays up (${files?.state})`);

    running = false;
    await Promise.all(loops);
    loops = [];
    assert.ok(acks.length > 0, 'writes were acknowledged');
    const stillFull = await shardOn(nc, FULL);
    assert.ok(stillFull?.lastError?.includes('store cannot write'), `still failing while full: ${JSON.stringify(stillFull)}`);

    rmSync(filler);
    const tail = await waitAllApplied(nc, NODES, 30_000);
    const d = await digests(nc, NODES);
    assert.ok(d.every((x) => x.appliedSeq === tail && x.digest === d[0]!.digest), `equal replicas: ${JSON.stringify(d)}`);
    assert.equal(await missingAcks(nats.urls, acks), [], 'every acknowledged write is there');
    const healed = await shardOn(nc, FULL);
    // lastError is the last one seen (as for any failure): the state says the replica is back.
    assert.ok(healed?.state === 'following' || healed?.state === 'leading', `${FULL} serves again: ${JSON.stringify(healed)}`);
    assert.ok(full.running && full.pid === pid, `${FULL}'s host never exited`);
    const log = full.stderr();
    assert.not.match(log, /unhandled rejection/i, 'nothing reached the unhandled-rejection handler');
    const reports = log.split('\n').filter((l) => l.includes('store cannot write')).length;
    assert.ok(reports >= 1, 'the failure is logged');
    process.stdout.write(
      `FIGURES ${JSON.stringify({ test: `disk-full-${leads ? 'leader' : 'follower'}`, acks: acks.length, tail, leader: other.node, errorLines: reports, lastError: failing.lastError })}\n`,
    );
  } catch (err) {
    if (hosts) process.stderr.write(hosts.stderr().slice(-20_000));
    throw err;
  } finally {
    running = false;
    await Promise.all(loops);
    for (const c of clients) {
      await c.client.close().catch(() => undefined);
      await c.nc.close().catch(() => undefined);
    }
    await hosts?.stop().catch(() => undefined);
    await nc?.close().catch(() => undefined);
    await nats?.destroy();
    unmount(fullDir);
    rmSync(dir, { recursive: true, force: true });
  }
}

test('the leader host on a full disk stays up, steps down saying why, loses no acknowledged write, and catches up once space returns', async () => {
  await fullDiskScenario('mini-1');
});

test('a follower host on a full disk stays up, pauses its tail saying why, and catches up once space returns', async () => {
  await fullDiskScenario('mini-3');
});

test.run();
