/**
 * A follower whose event loop was blocked longer than the lease must not presume a beating leader dead (review
 * session 10, finding 7). The beats that arrived during the block are still unread in the socket when the watcher's
 * timer fires; the watcher has to read them before judging. Real nats-server; the leader is a child process.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { connect } from 'nats';
import { startNatsServer } from '../../cli/index.ts';
import { HeartbeatMonitor, LeaseWatcher, systemTimerClock } from '../../actors/index.ts';

const PUBLISHER = fileURLToPath(new URL('./beat-publisher.ts', import.meta.url));
const LEASE_MS = 1500;
const HEARTBEAT_MS = 250;

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Blocks this process's event loop for `ms`, as a synchronous store open does. */
function blockFor(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // busy: nothing else in this process runs
  }
}

test('lease watcher - a block longer than the lease, with beats waiting in the socket, is not silence', async () => {
  const server = await startNatsServer();
  let child: ChildProcess | undefined;
  const nc = await connect({ servers: server.url });
  const watcher = new LeaseWatcher({
    clock: systemTimerClock,
    leaseMs: LEASE_MS,
    heartbeatMs: HEARTBEAT_MS,
    onExpired: () => expiries.push(beats),
  });
  let beats = 0;
  const expiries: number[] = [];
  const monitor = new HeartbeatMonitor({
    nc,
    domain: 'email',
    clock: systemTimerClock,
    minEpoch: () => 0,
    onHeartbeat: () => {
      beats++;
      watcher.heard();
    },
  });
  try {
    monitor.start();
    await nc.flush();
    child = spawn(process.execPath, ['--import', 'tsx', PUBLISHER, server.url, 'email', String(HEARTBEAT_MS)], { stdio: 'inherit' });
    await until(() => beats >= 3, 20_000, 'the first beats');
    watcher.start();
    await until(() => beats >= 5, 5_000, 'two more beats with the watcher running');

    // Block from inside a timer callback: the watcher's overdue timer runs next in the same timers phase, before
    // the poll phase reads the beats that arrived meanwhile.
    const beatsBefore = beats;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        blockFor(LEASE_MS + 500);
        resolve();
      }, 1);
      t.ref();
    });
    await until(() => beats >= beatsBefore + 10, 10_000, 'beats after the block');
    assert.equal(expiries, [], `the watcher presumed the leader dead after the block (beats heard then: ${expiries.join(', ')})`);
    assert.not.ok(watcher.expired(), 'the beats read after the block count');

    // The fix must not hide a real silence: stop the leader, and the watcher fires one lease later.
    child.kill('SIGKILL');
    const stoppedAt = Date.now();
    await until(() => expiries.length === 1, LEASE_MS + 3_000, 'the watcher to notice a real silence');
    assert.ok(Date.now() - stoppedAt >= LEASE_MS - HEARTBEAT_MS, 'not before the lease');
  } finally {
    watcher.stop();
    monitor.stop();
    child?.kill('SIGKILL');
    await nc.close();
    await server.destroy();
  }
});

test.run();
