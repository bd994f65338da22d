/**
 * A follower whose event loop was blocked longer than the lease must not presume a beating leader dead (review
 * session 10, finding 7). The beats that arrived during the block are still unread in the socket when the watcher's
 * timer fires; the watcher has to read them before judging — also when they sit behind megabytes of other traffic
 * on the same connection, more than one poll phase reads. Real nats-server; the leader is a child process.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { HeartbeatMonitor, LeaseWatcher, systemTimerClock } from '../../actors/index.ts';

const PUBLISHER = fileURLToPath(new URL('./beat-publisher.ts', import.meta.url));
const LEASE_MS = 1500;
const HEARTBEAT_MS = 250;

interface Ctx {
  server?: NatsServerProcess;
  nc?: NatsConnection;
  child?: ChildProcess;
  /** Beats heard by the monitor, over the whole suite. */
  beats: number;
  /** The watcher of the test under way. */
  watcher?: LeaseWatcher;
  monitor?: HeartbeatMonitor;
}

const stall = suite<Ctx>('lease watcher after a stall', { beats: 0 });

stall.before(async (ctx) => {
  ctx.server = await startNatsServer();
  ctx.nc = await connect({ servers: ctx.server.url });
  ctx.monitor = new HeartbeatMonitor({
    nc: ctx.nc,
    domain: 'email',
    clock: systemTimerClock,
    minEpoch: () => 0,
    onHeartbeat: () => {
      ctx.beats++;
      ctx.watcher?.heard();
    },
  });
  ctx.monitor.start();
  // The backlog's messages are read and dropped, as a host's other subscriptions would take their time.
  ctx.nc.subscribe('sm.test.filler', { callback: () => undefined });
  await ctx.nc.flush();
  ctx.child = spawn(process.execPath, ['--import', 'tsx', PUBLISHER, ctx.server.url, 'email', String(HEARTBEAT_MS)], { stdio: 'inherit' });
  await until(() => ctx.beats >= 3, 20_000, 'the first beats');
});

stall.after(async (ctx) => {
  ctx.watcher?.stop();
  ctx.monitor?.stop();
  ctx.child?.kill('SIGKILL');
  await ctx.nc?.close();
  await ctx.server?.destroy();
});

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

/**
 * Watches with a fresh watcher, blocks the loop for longer than the lease from inside a timer callback (the watcher's
 * overdue timer runs next in the same timers phase, before the poll phase reads what arrived meanwhile), and returns
 * the beat counts at which the watcher fired (none is right), once 10 more beats were heard.
 */
async function stallOnce(ctx: Ctx, backlogBytesPerBeat: number): Promise<number[]> {
  const expiries: number[] = [];
  ctx.watcher = new LeaseWatcher({ clock: systemTimerClock, leaseMs: LEASE_MS, heartbeatMs: HEARTBEAT_MS, onExpired: () => expiries.push(ctx.beats) });
  ctx.watcher.start();
  const started = ctx.beats;
  await until(() => ctx.beats >= started + 2, 5_000, 'two beats with the watcher running');
  if (backlogBytesPerBeat > 0) await ctx.nc!.request('sm.test.filler.start', new TextEncoder().encode(String(backlogBytesPerBeat)), { timeout: 5_000 });
  const before = ctx.beats;
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      blockFor(LEASE_MS + 500);
      resolve();
    }, 1);
    t.ref();
  });
  await until(() => ctx.beats >= before + 10, 15_000, 'beats after the block');
  assert.not.ok(ctx.watcher.expired(), 'the beats read after the block count');
  return expiries;
}

stall('beats waiting in the socket through a block longer than the lease are heard before the silence is judged', async (ctx) => {
  const expiries = await stallOnce(ctx, 0);
  assert.equal(expiries, [], `the watcher presumed the leader dead after the block (beats heard then: ${expiries.join(', ')})`);
  ctx.watcher!.stop();
});

stall('also when the beats sit behind megabytes of other traffic on the connection', async (ctx) => {
  // 4 MB between beats: ~16 MB queued during the block, more than a poll phase reads (one setImmediate judged too soon).
  const expiries = await stallOnce(ctx, 4 * 1024 * 1024);
  assert.equal(expiries, [], `the watcher presumed the leader dead after the block (beats heard then: ${expiries.join(', ')})`);
  ctx.watcher!.stop();
});

stall('a real silence still fires, one lease after the last beat', async (ctx) => {
  const expiries: number[] = [];
  ctx.watcher = new LeaseWatcher({ clock: systemTimerClock, leaseMs: LEASE_MS, heartbeatMs: HEARTBEAT_MS, onExpired: () => expiries.push(ctx.beats) });
  ctx.watcher.start();
  ctx.child!.kill('SIGKILL');
  const stoppedAt = Date.now();
  await until(() => expiries.length === 1, LEASE_MS + 3_000, 'the watcher to notice a real silence');
  assert.ok(Date.now() - stoppedAt >= LEASE_MS - HEARTBEAT_MS, 'not before the lease');
});

stall.run();
