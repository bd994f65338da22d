/**
 * Leases: how long a shard leader may trust that it still leads, and when a follower may presume it dead.
 *
 * The leader renews its lease from the moment a heartbeat was *sent* (not when its flush came back), so a follower
 * that last heard that heartbeat at or after the send time cannot presume the leader dead before the leader itself
 * has stopped serving reads. A drift margin covers clocks that tick at slightly different rates.
 *
 * Followers watch heartbeats on their own clock. Standby `rank` i waits an extra i × heartbeatMs before it claims,
 * so the first live standby in preference order usually wins the race and the others see its heartbeats first.
 *
 * A silence is judged only after the event loop has read its sockets: the watcher's timer runs in the timers phase,
 * and after a synchronous stretch longer than the lease (a large store opening) the beats that arrived meanwhile are
 * still unread. So an expiry is re-checked once more on `setImmediate`, which runs after the poll phase: nats.js hands
 * a socket's data to its parser in microtasks drained right after that data event, and a heartbeat subscription's
 * callback runs inside the parse, so by then every beat that was in the first reads has been heard. One poll phase
 * reads a socket's backlog only so far (libuv stops after 32 reads), so a busy connection's beats can sit behind more
 * than that: a timer that ran more than a beat late (the loop was blocked, this follower was not listening) first
 * listens `STALL_GRACE_BEATS` beats longer, again while its timers keep running late, up to one more patience.
 */
import type { TimerClock, TimerHandle } from './timers.ts';

/** The leader's view: until when it may serve reads without hearing from the cluster. */
export class LeaderLease {
  private until = 0;

  constructor(
    private readonly leaseMs: number,
    /** Subtracted from every renewal; default a tenth of the lease. */
    private readonly driftMarginMs = Math.floor(leaseMs / 10),
  ) {}

  /** A heartbeat sent at `sentAt` reached the server and came back (flush): the lease runs from `sentAt`. */
  renew(sentAt: number): void {
    this.until = Math.max(this.until, sentAt + this.leaseMs - this.driftMarginMs);
  }

  valid(now: number): boolean {
    return now < this.until;
  }

  /** Epoch ms the lease lapses at (0 before the first renewal). */
  get leaseUntil(): number {
    return this.until;
  }

  /** Forget the lease (on stepping down), so a stale renewal cannot revive it. */
  revoke(): void {
    this.until = 0;
  }
}

export interface LeaseWatcherOptions {
  readonly clock: TimerClock;
  readonly leaseMs: number;
  readonly heartbeatMs: number;
  /** Position among the live standbys (0 = first choice). */
  readonly rank?: number;
  /** Called once per silence; `heard()` or `rearm()` arms it again. Errors it throws are the caller's bug. */
  readonly onExpired: () => void;
  /**
   * Runs `fn` once the event loop has read pending I/O (default `setImmediate`); returns a cancel. A `ManualClock`
   * test passes `(fn) => (fn(), () => {})` to judge at once.
   */
  readonly afterPendingIo?: (fn: () => void) => () => void;
}

/** Beats a follower listens after its own stall before it judges a silence that the stall hid. */
export const STALL_GRACE_BEATS = 2;

function afterPendingIo(fn: () => void): () => void {
  const handle = setImmediate(fn);
  return () => clearImmediate(handle);
}

/**
 * A follower's failure detector for one shard. Silence is measured from the last heartbeat heard, or from
 * `start()`/`rearm()`, so a fresh follower gives the leader a full lease before suspecting it.
 *
 * @example
 * const w = new LeaseWatcher({ clock, leaseMs: 1500, heartbeatMs: 250, rank: 0, onExpired: () => claim() });
 * w.start();
 * monitor.onHeartbeat = () => w.heard();
 */
export class LeaseWatcher {
  private lastSeen = 0;
  private timer: TimerHandle | undefined;
  /** When the pending timer is due: a check that runs much later says this process was not listening. */
  private timerDueAt = 0;
  /** When this silence first fell due: stall graces end one patience after it. */
  private silenceDueAt = 0;
  /** Cancels the re-check of an expiry queued behind pending I/O. */
  private cancelVerdict: (() => void) | undefined;
  private rank: number;
  private running = false;
  private fired = false;

  constructor(private readonly o: LeaseWatcherOptions) {
    this.rank = o.rank ?? 0;
  }

  /** Starts watching; the silence counts from now. Idempotent. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.rearm();
  }

  /** A heartbeat from the current leader arrived. */
  heard(): void {
    if (!this.running) return;
    this.lastSeen = this.o.clock.now();
    this.fired = false;
    this.schedule();
  }

  /** Restart the countdown from now (after a claim attempt that lost, or when leadership changed hands). */
  rearm(): void {
    if (!this.running) return;
    this.lastSeen = this.o.clock.now();
    this.fired = false;
    this.schedule();
  }

  setRank(rank: number): void {
    this.rank = Math.max(0, rank);
    if (this.running && !this.fired) this.schedule();
  }

  /** How long this follower waits in silence before claiming. */
  get patienceMs(): number {
    return this.o.leaseMs + this.rank * this.o.heartbeatMs;
  }

  /** Local time the last heartbeat (or start/rearm) was recorded. */
  get lastSeenAt(): number {
    return this.lastSeen;
  }

  expired(now = this.o.clock.now()): boolean {
    return now - this.lastSeen > this.patienceMs;
  }

  /** Cancels the timer. Idempotent. */
  stop(): void {
    this.running = false;
    if (this.timer !== undefined) this.o.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.cancelVerdict?.();
    this.cancelVerdict = undefined;
  }

  private schedule(): void {
    // +1: "silent past the lease" is strictly more than patienceMs.
    this.silenceDueAt = this.lastSeen + this.patienceMs + 1;
    this.setTimer(this.silenceDueAt);
  }

  private setTimer(dueAt: number): void {
    if (this.timer !== undefined) this.o.clock.clearTimeout(this.timer);
    this.timerDueAt = dueAt;
    this.timer = this.o.clock.setTimeout(() => this.check(), Math.max(0, dueAt - this.o.clock.now()));
  }

  private check(): void {
    this.timer = undefined;
    if (!this.running || this.fired || this.cancelVerdict) return;
    if (!this.expired()) {
      this.schedule();
      return;
    }
    const now = this.o.clock.now();
    if (now - this.timerDueAt > this.o.heartbeatMs && now < this.silenceDueAt + this.patienceMs) {
      // This timer ran more than a beat late: the loop was blocked, and beats may be queued behind a long backlog.
      this.setTimer(now + STALL_GRACE_BEATS * this.o.heartbeatMs);
      return;
    }
    // Silent on the timer's reading; ask again once the sockets have been read (see the header).
    let judged = false;
    const cancel = (this.o.afterPendingIo ?? afterPendingIo)(() => {
      judged = true;
      this.cancelVerdict = undefined;
      this.verdict();
    });
    if (!judged) this.cancelVerdict = cancel;
  }

  private verdict(): void {
    if (!this.running || this.fired) return;
    if (!this.expired()) {
      this.schedule();
      return;
    }
    this.fired = true;
    this.o.onExpired();
  }
}

/**
 * A node's failover rank for a domain: its position among the placement's standbys that are alive, in
 * preference order. Nodes not in the list (followers added by `migrate`) rank after every listed standby.
 */
export function standbyRank(standbys: readonly string[], node: string, alive?: ReadonlySet<string>): number {
  const live = alive ? standbys.filter((s) => s === node || alive.has(s)) : standbys;
  const i = live.indexOf(node);
  return i >= 0 ? i : live.length;
}
