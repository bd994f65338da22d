/** Leases and the follower's failure detector, on a manual clock: time moves, nothing sleeps. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LeaderLease, LeaseWatcher, standbyRank, ManualClock, type TimerClock, type TimerHandle } from '../../actors/index.ts';

/** On a manual clock nothing is waiting in a socket: judge a silence at once. */
const judgeNow = (fn: () => void): (() => void) => (fn(), () => {});

test('leader lease - runs from the send time, less the drift margin, and never moves back', () => {
  const lease = new LeaderLease(1500, 150);
  assert.is(lease.valid(0), false, 'no lease before the first renewal');
  lease.renew(1000);
  assert.is(lease.leaseUntil, 2350);
  assert.ok(lease.valid(2349));
  assert.not.ok(lease.valid(2350));
  lease.renew(900); // a late flush of an older beat
  assert.is(lease.leaseUntil, 2350);
  lease.revoke();
  assert.not.ok(lease.valid(1001));
});

test('lease watcher - fires once after leaseMs of silence, not before', () => {
  const clock = new ManualClock(10_000);
  let fired = 0;
  const w = new LeaseWatcher({ clock, afterPendingIo: judgeNow, leaseMs: 1500, heartbeatMs: 250, rank: 0, onExpired: () => fired++ });
  w.start();
  clock.advance(1500);
  assert.is(fired, 0, 'exactly leaseMs is not past the lease');
  clock.advance(1);
  assert.is(fired, 1);
  clock.advance(10_000);
  assert.is(fired, 1, 'fires once per silence');
  w.rearm();
  clock.advance(1501);
  assert.is(fired, 2, 'rearm starts a new countdown');
  w.stop();
  assert.is(clock.pending, 0, 'stop cancels the timer');
});

test('lease watcher - heartbeats keep it quiet; silence after the last one counts from it', () => {
  const clock = new ManualClock(0);
  let firedAt = -1;
  const w = new LeaseWatcher({ clock, afterPendingIo: judgeNow, leaseMs: 1500, heartbeatMs: 250, onExpired: () => (firedAt = clock.now()) });
  w.start();
  for (let i = 0; i < 20; i++) {
    clock.advance(250);
    w.heard();
  }
  assert.is(firedAt, -1);
  const last = clock.now();
  clock.advance(5_000);
  assert.is(firedAt, last + 1501);
  assert.is(w.lastSeenAt, last);
  w.stop();
});

test('lease watcher - standby rank i waits i heartbeats longer', () => {
  const clock = new ManualClock(0);
  const firedAt: number[] = [];
  const watchers = [0, 1, 2].map(
    (rank) =>
      new LeaseWatcher({ clock, afterPendingIo: judgeNow, leaseMs: 1500, heartbeatMs: 250, rank, onExpired: () => (firedAt[rank] = clock.now()) }),
  );
  for (const w of watchers) w.start();
  clock.advance(3_000);
  assert.equal(firedAt, [1501, 1751, 2001]);
  watchers[2]!.rearm();
  watchers[2]!.setRank(0);
  assert.is(watchers[2]!.patienceMs, 1500);
  for (const w of watchers) w.stop();
});

/**
 * A manual clock whose timers can also run late: `stall(ms)` moves time as a blocked event loop does, firing what
 * fell due only at the end, each seeing the late time; `advance(ms)` fires timers at their due times.
 */
class StallingClock implements TimerClock {
  private timers: { id: number; at: number; fn: () => void }[] = [];
  private nextId = 1;
  constructor(private t = 0) {}
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.nextId++;
    this.timers.push({ id, at: this.t + Math.max(0, ms), fn });
    return { id };
  }
  clearTimeout(handle: TimerHandle): void {
    this.timers = this.timers.filter((x) => x.id !== (handle as { id: number }).id);
  }
  stall(ms: number): void {
    this.t += ms;
    this.fireDue(this.t, false);
  }
  advance(ms: number): void {
    this.fireDue(this.t + ms, true);
  }
  private fireDue(until: number, onTime: boolean): void {
    for (;;) {
      const due = this.timers.filter((x) => x.at <= until).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.timers = this.timers.filter((x) => x !== due);
      if (onTime) this.t = Math.max(this.t, due.at);
      due.fn();
    }
    this.t = Math.max(this.t, until);
  }
}

test('lease watcher - a check that runs late (its own loop was blocked) listens two beats more before judging', () => {
  const clock = new StallingClock(0);
  let firedAt = -1;
  const w = new LeaseWatcher({ clock, afterPendingIo: judgeNow, leaseMs: 1500, heartbeatMs: 250, onExpired: () => (firedAt = clock.now()) });
  w.start();
  clock.stall(2_000); // due at 1501, runs at 2000
  assert.is(firedAt, -1, 'not judged at once');
  clock.advance(100);
  w.heard(); // a beat that waited behind the backlog
  clock.advance(1_000);
  assert.is(firedAt, -1, 'the beat read after the stall counts');
  clock.advance(600);
  assert.is(firedAt, 2100 + 1501, 'a real silence after it still fires on time');
  w.stop();
});

test('lease watcher - after its own stall, a silence that goes on fires two beats later; a loop that stays late still fires', () => {
  const clock = new StallingClock(0);
  let firedAt = -1;
  const w = new LeaseWatcher({ clock, afterPendingIo: judgeNow, leaseMs: 1500, heartbeatMs: 250, onExpired: () => (firedAt = clock.now()) });
  w.start();
  clock.stall(2_000);
  clock.advance(499);
  assert.is(firedAt, -1);
  clock.advance(1);
  assert.is(firedAt, 2_500, 'two beats of listening after the stall');
  // Every timer runs 400 ms late: graces end one patience after the silence fell due, then it judges.
  firedAt = -1;
  w.rearm();
  const silenceDue = clock.now() + 1501;
  for (let i = 0; i < 20 && firedAt < 0; i++) clock.stall(650);
  assert.ok(firedAt > 0, 'fired');
  assert.ok(firedAt <= silenceDue + 1500 + 650, `fired at ${firedAt - silenceDue} ms past due`);
  w.stop();
});

test('standby rank - position among live standbys; unknown followers rank last', () => {
  const standbys = ['mini-2', 'mini-3', 'mini-4'];
  assert.is(standbyRank(standbys, 'mini-2'), 0);
  assert.is(standbyRank(standbys, 'mini-4'), 2);
  assert.is(standbyRank(standbys, 'mini-4', new Set(['mini-3'])), 1, 'a dead mini-2 does not hold mini-4 back');
  assert.is(standbyRank(standbys, 'mini-9'), 3);
});

test.run();
