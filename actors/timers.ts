/**
 * A `Clock` that can also schedule. Heartbeats, leases and failover timers use it instead of `setTimeout`, so tests
 * move time with a `ManualClock` instead of sleeping (the way xstate's `SimulatedClock` does).
 */
import type { Clock } from './clock.ts';

export type TimerHandle = { readonly id: number } | ReturnType<typeof setTimeout>;

export interface TimerClock extends Clock {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** The wall time when this module loaded, and the monotonic time then: `systemTimerClock.now` counts on from both. */
const WALL_AT_LOAD = Date.now();
const MONOTONIC_AT_LOAD = performance.now();

/**
 * Real time, measured on the monotonic clock: the wall time when the process started plus the monotonic time since.
 * What this clock times are durations — a leader's read lease, a follower's silence before it claims, a replica's
 * freshness — and a wall clock stepped back by Δ (NTP after a sleep, a manual fix) would keep a cut-off leader's lease
 * or a replica's freshness valid for Δ more (stale reads), and delay a standby's claim by Δ (review-session11b,
 * findings 6 and 7). A step moves `Date.now()`, never this. The heartbeats' `at` stamps come from it too, so they stay
 * off the wall clock by the steps since the host started; followers take the earlier of that stamp and their own
 * receive time, so a stamp that runs behind only makes them more cautious (restart a host after fixing a badly wrong
 * clock). What is stored — `recordedAt`, world times — still comes from `Date.now()` (`clock.ts`).
 *
 * Timers are unref'd: a pending heartbeat never keeps a process alive on its own.
 */
export const systemTimerClock: TimerClock = {
  now: () => WALL_AT_LOAD + (performance.now() - MONOTONIC_AT_LOAD),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout(handle) {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};

interface ManualTimer {
  readonly id: number;
  readonly at: number;
  readonly fn: () => void;
}

/**
 * A clock that only moves when told. `advance(ms)` fires every timer that falls due, in time order, including
 * timers scheduled by the callbacks it fires.
 *
 * @example
 * const clock = new ManualClock(0);
 * clock.setTimeout(() => console.log('late'), 100);
 * clock.advance(100); // prints "late"
 */
export class ManualClock implements TimerClock {
  private timers: ManualTimer[] = [];
  private nextId = 1;

  constructor(private current = 0) {}

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer = { id: this.nextId++, at: this.current + Math.max(0, ms), fn };
    this.timers.push(timer);
    return { id: timer.id };
  }

  clearTimeout(handle: TimerHandle): void {
    const id = (handle as { id?: unknown }).id;
    this.timers = this.timers.filter((t) => t.id !== id);
  }

  /** Moves time forward, firing due timers one by one (each sees `now()` equal to its due time). */
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.current = Math.max(this.current, due.at);
      due.fn();
    }
    this.current = target;
  }

  /** Timers not yet fired. */
  get pending(): number {
    return this.timers.length;
  }
}
