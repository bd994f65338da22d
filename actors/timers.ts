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

/** Real time. Timers are unref'd: a pending heartbeat never keeps a process alive on its own. */
export const systemTimerClock: TimerClock = {
  now: () => Date.now(),
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
