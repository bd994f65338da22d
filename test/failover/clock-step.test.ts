/**
 * Leases and failure detection time durations on the monotonic clock (review-session11b, findings 6 and 7): a wall
 * clock stepped back by ten minutes — NTP after a sleep, an operator's fix — must neither keep a leader's read lease
 * valid past its length (a cut-off leader would serve stale reads) nor delay a standby's claim. The step is made the
 * way it reaches the code, through `Date.now()`, in this process only; the timers are the real ones.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LeaderLease, LeaseWatcher, systemTimerClock } from '../../actors/index.ts';

const LEASE_MS = 300;
const HEARTBEAT_MS = 50;
const STEP_BACK_MS = 10 * 60_000;

/** Runs `body` with `Date.now()` stepped back by `ms` (as an NTP step would), then puts the clock back. */
async function withWallClockSteppedBack<T>(ms: number, body: () => Promise<T>): Promise<T> {
  const realNow = Date.now;
  Date.now = () => realNow() - ms;
  try {
    return await body();
  } finally {
    Date.now = realNow;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a leader lease renewed just before the wall clock steps back lapses after its length, not ten minutes later', async () => {
  const lease = new LeaderLease(LEASE_MS);
  lease.renew(systemTimerClock.now());
  assert.ok(lease.valid(systemTimerClock.now()), 'valid right after the renewal');
  await withWallClockSteppedBack(STEP_BACK_MS, async () => {
    await sleep(LEASE_MS + 50);
    assert.not.ok(lease.valid(systemTimerClock.now()), 'lapsed one lease after the last renewal, step or no step');
  });
});

test('a standby that heard the leader just before the wall clock stepped back claims after its patience, not ten minutes later', async () => {
  let expiredAt: number | undefined;
  const started = performance.now();
  const watcher = new LeaseWatcher({ clock: systemTimerClock, leaseMs: LEASE_MS, heartbeatMs: HEARTBEAT_MS, onExpired: () => (expiredAt = performance.now()) });
  watcher.start();
  watcher.heard();
  try {
    await withWallClockSteppedBack(STEP_BACK_MS, async () => {
      const deadline = performance.now() + 5_000;
      while (expiredAt === undefined && performance.now() < deadline) await sleep(20);
    });
    assert.ok(expiredAt !== undefined, 'the silent leader was suspected');
    assert.ok(expiredAt! - started < 3_000, `suspected after ${Math.round(expiredAt! - started)} ms (patience ${LEASE_MS} ms)`);
  } finally {
    watcher.stop();
  }
});

test('the timer clock never runs backwards when the wall clock does, and starts at the wall time', async () => {
  const before = systemTimerClock.now();
  assert.ok(Math.abs(before - Date.now()) < 1_000, 'close to the wall clock while nothing stepped');
  await withWallClockSteppedBack(STEP_BACK_MS, async () => {
    assert.ok(systemTimerClock.now() >= before, 'a backward step does not move it');
  });
});

test.run();
