/**
 * A bootstrap's download from a nats-server that froze mid-way gives up within its bound, says so, and leaves nothing
 * beside the store; the machine then tries again (decisions §81).
 *
 * nats.js's `ObjectStore.get()` feeds the object through an ordered push consumer: when the server goes silent it
 * recreates the consumer with retries that never stop, so the old download (piped until nats.js closed the stream)
 * waited as long as the server stayed frozen (checked: still waiting 50 s after a SIGSTOP). `SnapshotBucket.download`
 * gives up after 12 s without a byte; this test asks its bucket for 8 s.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { startNatsServer, waitForJetStream, type NatsServerProcess } from '../../cli/index.ts';
import { SnapshotBucket, installNewestSnapshot } from '../../actors/index.ts';
import { FORMAT } from '../../shards/index.ts';

/** Big enough that the download is under way, not over, 100 ms after it starts. */
const BYTES = 64 * 1024 * 1024;
/** The stall bound this test's bucket is opened with (production's is 12 s). */
const STALL_MS = 8_000;
/** The bound and room for a loaded box. */
const GIVES_UP_WITHIN_MS = STALL_MS + 15_000;

test('snapshot download - a server frozen mid-download fails the install within its bound, saying where, and leaves nothing behind', async () => {
  let server: NatsServerProcess | undefined;
  let nc: NatsConnection | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'sm-snap-stall-'));
  try {
    server = await startNatsServer();
    const frozen = server;
    nc = await connect({ servers: server.url });
    await waitForJetStream(nc);
    const bucket = await SnapshotBucket.open(nc.jetstream(), 'email', 1, undefined, undefined, { downloadStallMs: STALL_MS });
    const file = join(dir, 'upload.mdb');
    writeFileSync(file, Buffer.alloc(BYTES, 7));
    // Refused after the download by the copy's check in a healthy run; here the download never ends.
    await bucket.put(file, { v: 1, domain: 'email', seq: 500, tailHash: 'x', format: FORMAT, digest: 'd', epoch: 1, node: 'mini-1', takenAt: new Date().toISOString(), bytes: BYTES });

    const lines: string[] = [];
    let frozeAt = 0;
    const storePath = join(dir, 'replica');
    const outcome = installNewestSnapshot({
      bucket,
      storePath,
      storeOptions: { domain: 'email' },
      logFirstSeq: 400,
      position: 0,
      logLevel: 4,
      closeStore: async () => undefined,
      log: (line) => {
        lines.push(line);
        if (line.startsWith('downloading snapshot')) {
          setTimeout(() => {
            frozen.kill('SIGSTOP');
            frozeAt = Date.now();
          }, 100);
        }
      },
    }).then(
      () => 'installed' as const,
      (err: unknown) => err as { code?: string; message: string },
    );
    let guard: NodeJS.Timeout | undefined;
    const settled = await Promise.race([outcome, new Promise<'waiting'>((r) => (guard = setTimeout(() => r('waiting'), GIVES_UP_WITHIN_MS + 10_000)))]);
    clearTimeout(guard);
    const ms = Date.now() - frozeAt;
    frozen.kill('SIGCONT');
    if (settled === 'installed') return assert.unreachable('the download cannot finish while the server is frozen');
    if (settled === 'waiting') return assert.unreachable(`the install still waited ${ms} ms after the server froze:\n${lines.join('\n')}`);
    assert.ok(frozeAt > 0, `the server was frozen mid-download:\n${lines.join('\n')}`);
    assert.ok(ms < GIVES_UP_WITHIN_MS, `gave up ${ms} ms after the server froze`);
    assert.is(settled.code, 'UNAVAILABLE');
    assert.match(settled.message, /downloading snapshot snapshot-0+500 of email \(\d+ of 67108864 bytes in\): no answer within 8 s/);
    assert.ok(lines.some((l) => l.startsWith('listing the email snapshots')) && lines.some((l) => l.startsWith('chose snapshot')), lines.join('\n'));
    assert.not.ok(existsSync(`${storePath}-incoming`), 'the partial download is removed');
    assert.not.ok(existsSync(storePath), 'no store was put in place');
  } finally {
    server?.kill('SIGCONT');
    await nc?.close().catch(() => undefined);
    await server?.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
