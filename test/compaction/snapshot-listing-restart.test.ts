/**
 * A snapshot listing after a nats-server of the bucket's stream was killed and restarted names every snapshot kept,
 * every time, within its bound; and a bootstrap's install from it completes and says each step in the log.
 *
 * nats.js's `ObjectStore.list()` reads the meta messages through an ordered push consumer that ends only at a message
 * the server says has nothing pending after it. On nats-server 2.9.10, once a server of the stream restarted, a
 * listing placed on it named only the newest snapshot (and its pending counts could exceed what it delivered, which
 * never ends: the chaos soak's replica that sat 57 s in `bootstrapping` with no line after it, decisions §75, §81).
 * Before the fix about a third of these listings were short; `SnapshotBucket.list` now asks the stream leader.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { startNatsCluster, waitForJetStream, type NatsCluster } from '../../cli/index.ts';
import { SnapshotBucket, copyStore, inspectStoreCopy, installNewestSnapshot, snapshotName, type SnapshotMeta } from '../../actors/index.ts';
import { openShardStore, type AssertEntry, type ShardStore } from '../../shards/index.ts';

const DOMAIN = 'email';
const STREAM = 'OBJ_sm_snap_email';
/** Listings made after the restart, each through a new connection (so a new consumer, placed anew, in nats.js). */
const LISTINGS = 12;
/** Longest a listing may take here: the bucket's own bound is 30 s, a healthy cluster answers in milliseconds. */
const LISTING_BOUND_MS = 10_000;

function entry(i: number): AssertEntry {
  return { v: 1, op: 'assert', opId: `op-${i}`, recordedAt: 1_760_000_000_000 + i, source: { agent: 'test' }, fact: { text: `note ${i} about the inbox`, subject: 'user', predicate: 'noted', object: String(i) } };
}

async function storeWith(path: string, count: number): Promise<ShardStore> {
  const store = openShardStore({ path, domain: DOMAIN });
  for (let i = 1; i <= count; i += 50) {
    const batch = Array.from({ length: Math.min(50, count - i + 1) }, (_, j) => ({ seq: i + j, entry: entry(i + j) }));
    await store.applyBatch(batch, { tailHash: `hash-${batch[batch.length - 1]!.seq}` });
  }
  return store;
}

/** Retries what a cluster that just lost or regained a server may refuse for a moment (no leader yet). */
async function settled<T>(what: string, work: () => Promise<T>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await work();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what}: ${String(err)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

test('snapshot listing - after a nats-server of the bucket is killed and restarted, every listing names every kept snapshot, and an install says each step', async () => {
  let cluster: NatsCluster | undefined;
  let nc: NatsConnection | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'sm-snap-listing-'));
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  let leader: ShardStore | undefined;
  try {
    cluster = await startNatsCluster(3);
    const servers = cluster.servers;
    nc = await connect({ servers: cluster.urls, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    await waitForJetStream(nc);
    const jsm = await nc.jetstreamManager();
    const bucket = await settled('open the bucket', () => SnapshotBucket.open(nc!.jetstream(), DOMAIN, 3));

    // A real snapshot to install (the newest), behind older ones as compactions leave them.
    leader = await storeWith(join(dir, 'leader'), 120);
    const file = await copyStore(join(dir, 'leader'), join(dir, 'copy'));
    const facts = await inspectStoreCopy(join(dir, 'copy'), { domain: DOMAIN });
    const meta: SnapshotMeta = {
      v: 1, domain: DOMAIN, seq: facts.appliedSeq, tailHash: facts.tailHash!, format: facts.format!, digest: facts.digest,
      epoch: 0, node: 'mini-1', takenAt: new Date().toISOString(), bytes: 0,
    };
    for (let seq = 10; seq <= 80; seq += 10) await bucket.put(file, { ...meta, seq });
    // Deleted as builds before §81 pruned, leaving nats.js's "deleted" meta message behind.
    await (await nc.jetstream().views.os('sm_snap_email')).delete(snapshotName(10));
    await bucket.put(file, meta);
    const kept = [20, 30, 40, 50, 60, 70, 80, meta.seq].map(snapshotName);
    assert.equal((await bucket.list()).map((s) => s.name), kept, 'listed before the restart');

    // kill -9 a server holding a replica of the bucket's stream (not its leader), and start it again on its store.
    const streamLeader = (await jsm.streams.info(STREAM)).cluster?.leader;
    const victim = servers.find((s) => s.name !== streamLeader)!;
    victim.kill('SIGKILL');
    await victim.waitExit();
    await new Promise((r) => setTimeout(r, 1_000));
    await victim.start();

    const wrong: string[] = [];
    for (let i = 0; i < LISTINGS; i++) {
      // The restarted server itself may answer as if it held the newest object only (seen on 2.9.10: a loss on that
      // server that no listing sees past while it leads the stream, §81). A listing asks the stream leader: keep that
      // a server that was not restarted, as it was before the kill.
      if ((await settled('stream info', () => jsm.streams.info(STREAM))).cluster?.leader === victim.name) {
        await nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${STREAM}`, undefined, { timeout: 5_000 }).catch(() => undefined);
        await settled('a leader other than the restarted server', async () => {
          if ((await jsm.streams.info(STREAM)).cluster?.leader === victim.name) throw new Error('still the restarted server');
        });
      }
      const c = await connect({ servers: cluster.urls });
      try {
        const b = await settled('open the bucket', () => SnapshotBucket.open(c.jetstream(), DOMAIN, 3));
        const started = Date.now();
        const listing = await settled('list', () => b.list());
        const ms = Date.now() - started;
        const names = listing.map((s) => s.name);
        if (ms > LISTING_BOUND_MS || names.join() !== kept.join()) wrong.push(`listing ${i + 1}: ${names.map((n) => Number(n.slice(9))).join(',')} in ${ms} ms`);
      } finally {
        await c.close();
      }
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.equal(wrong, [], `every listing named the ${kept.length} kept snapshots, within ${LISTING_BOUND_MS} ms`);

    // A replica behind the log installs the newest, and its log says where it is at each step.
    const lines: string[] = [];
    const installed = await installNewestSnapshot({
      bucket,
      storePath: join(dir, 'replica'),
      storeOptions: { domain: DOMAIN },
      logFirstSeq: 100,
      position: 0,
      logLevel: 4,
      closeStore: async () => undefined,
      log: (line) => void lines.push(line),
    });
    assert.is(installed.seq, meta.seq);
    const replica = openShardStore({ path: join(dir, 'replica'), domain: DOMAIN });
    assert.is(replica.digest(), leader.digest(), 'the installed store is the snapshot');
    await replica.close();
    const steps = ['listing the email snapshots', `chose snapshot ${snapshotName(meta.seq)}, the newest of ${kept.length}`, 'downloading snapshot', 'downloaded snapshot', 'installing snapshot', 'installed snapshot'];
    for (const step of steps) assert.ok(lines.some((l) => l.startsWith(step)), `a line for "${step}" in:\n${lines.join('\n')}`);

    // Pruning leaves the kept ones, and no "deleted" meta messages for a listing to read.
    const pruned = await bucket.prune(2);
    assert.equal(pruned, kept.slice(0, -2));
    assert.equal((await bucket.list()).map((s) => s.name), kept.slice(-2));
    const metas = await jsm.streams.info(STREAM, { subjects_filter: '$O.sm_snap_email.M.>' });
    assert.is(Object.keys(metas.state.subjects ?? {}).length, 2, 'only the kept snapshots have meta messages');

    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    assert.equal(unhandled.map(String), [], 'no promise was left rejected with no handler');
  } finally {
    process.off('unhandledRejection', onUnhandled);
    await leader?.close();
    await nc?.close();
    await cluster?.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
