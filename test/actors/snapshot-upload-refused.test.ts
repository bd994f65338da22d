/**
 * A snapshot upload whose chunks JetStream refuses fails the upload, and only the upload: no promise is left rejected
 * with no handler. nats.js's object store publishes each chunk as it reads the file and awaits the acks at the end; a
 * refusal that came back while it was still reading rejected unhandled, and a host (whose unhandled-rejection rule
 * exits) died mid-compaction when a nats-server went away (found by the chaos soak, decisions §75). Here the bucket's
 * stream takes no message over 1 KiB, so every 128 KiB chunk is refused while the 16 MiB file is still being read.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'nats';
import { startNatsServer, waitForJetStream } from '../../cli/index.ts';
import { SnapshotBucket } from '../../actors/index.ts';

test('a snapshot upload with refused chunks rejects put and leaves no unhandled rejection', async () => {
  const server = await startNatsServer();
  const nc = await connect({ servers: server.url });
  const dir = mkdtempSync(join(tmpdir(), 'sm-snap-refused-'));
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    await waitForJetStream(nc);
    const bucket = await SnapshotBucket.open(nc.jetstream(), 'refused', 1);
    const jsm = await nc.jetstreamManager();
    const stream = 'OBJ_sm_snap_refused';
    const info = await jsm.streams.info(stream);
    await jsm.streams.update(stream, { ...info.config, max_msg_size: 1024 });
    const file = join(dir, 'data.mdb');
    writeFileSync(file, Buffer.alloc(16 * 1024 * 1024, 7));
    const meta = { v: 1 as const, domain: 'refused', seq: 1, tailHash: 'x', format: 8, digest: 'd', epoch: 1, node: 'n', takenAt: new Date(0).toISOString(), bytes: 16 * 1024 * 1024 };
    let failed: unknown;
    await bucket.put(file, meta).then(
      () => assert.unreachable('JetStream refused every chunk: the upload cannot succeed'),
      (err: unknown) => void (failed = err),
    );
    // Unhandled rejections are reported after the microtask queue drains: give them a few turns of the loop.
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    assert.ok(failed instanceof Error, `put rejected (${String(failed)})`);
    assert.equal(unhandled.map(String), [], 'no chunk publish was left rejected with no handler');
    assert.is(await bucket.newest(), undefined, 'nothing readable was stored');
  } finally {
    process.off('unhandledRejection', onUnhandled);
    await nc.close();
    await server.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
