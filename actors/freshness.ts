/**
 * How stale a follower's answers may be: the bound a replica read reports (`staleMs`) and checks `maxStaleMs`
 * against.
 *
 * The leader's heartbeat says what it had applied when it sent the beat (`seq`), and a leader acknowledges a write
 * only once it has applied it; so every write acknowledged before the beat was sent has a sequence ≤ `seq`. Once
 * this follower has applied `seq` too, it holds all of them: it is fresh as of the beat. `freshAsOf` is the time of
 * the latest such beat, and `staleness = now − freshAsOf`.
 *
 * The time of a beat is the earlier of its local receive time and its send time (`at`, the leader's clock):
 * - receive time alone would over-trust a beat that sat in a buffer (a sender paused between reading its state and
 *   publishing, or this process paused with beats queued for it): its `seq` describes the send time;
 * - the send time alone would trust the leader's clock; a leader's clock ahead of ours is caught by the minimum.
 * What remains unaccounted for is the transit time of a prompt beat (a few ms on a LAN) plus any amount by which
 * the leader's clock runs behind ours: the bound under-reports by that much.
 *
 * Beats count only while the sender's lease is valid (`lease: true`): a deposed leader that wakes from a pause
 * beats with its old, short `seq` until it notices, and its lease has lapsed by then. Beats of an older epoch than
 * this follower knows are ignored; a newer epoch (a beat or an applied marker) forgets what was known, so a
 * follower that has not yet heard a beat of the current epoch has no bound (staleness is infinite).
 */
import type { Clock } from './clock.ts';

/** What a heartbeat tells the tracker. */
export interface FreshnessBeat {
  readonly epoch: number;
  readonly seq: number;
  /** The leader's clock when sent, ms (parsed `at`); NaN when unknown. */
  readonly sentAt: number;
  /** The sender's lease was valid when it sent this. */
  readonly lease: boolean;
}

/** Beats not yet covered by what this follower applied; past this many the oldest go (it only ever under-trusts). */
const MAX_PENDING = 64;

export class FreshnessTracker {
  private epoch: number;
  private freshAt: number | undefined;
  private applied: number;
  /** Beats whose `seq` is above what is applied, oldest first: `seq` and `at` both non-decreasing. */
  private pending: { seq: number; at: number }[] = [];

  constructor(
    private readonly clock: Clock,
    initial: { readonly epoch: number; readonly appliedSeq: number },
  ) {
    this.epoch = initial.epoch;
    this.applied = initial.appliedSeq;
  }

  /** A heartbeat arrived (now, by the tracker's clock). */
  onHeartbeat(beat: FreshnessBeat, receivedAt: number = this.clock.now()): void {
    if (beat.epoch < this.epoch) return;
    if (beat.epoch > this.epoch) this.forget(beat.epoch);
    if (!beat.lease) return;
    const at = Number.isFinite(beat.sentAt) ? Math.min(receivedAt, beat.sentAt) : receivedAt;
    if (beat.seq <= this.applied) {
      this.covered(at);
      this.pending = this.pending.filter((p) => p.at > at);
      return;
    }
    // An earlier beat with the same or a higher seq is covered no sooner than this one and says an earlier time.
    while (this.pending.length > 0 && this.pending[this.pending.length - 1]!.seq >= beat.seq) this.pending.pop();
    // A beat with a higher seq but no later time than the one before it adds nothing.
    const last = this.pending[this.pending.length - 1];
    if (last === undefined || at > last.at) this.pending.push({ seq: beat.seq, at });
    if (this.pending.length > MAX_PENDING) this.pending.shift();
  }

  /** This follower applied up to `seq`. */
  onApplied(seq: number): void {
    if (seq <= this.applied) return;
    this.applied = seq;
    let i = 0;
    for (; i < this.pending.length && this.pending[i]!.seq <= seq; i++) this.covered(this.pending[i]!.at);
    if (i > 0) this.pending.splice(0, i);
  }

  /** A leadership marker of `epoch` was applied: a newer epoch forgets what older beats said. */
  onEpoch(epoch: number): void {
    if (epoch > this.epoch) this.forget(epoch);
  }

  /** ms since the time this follower is known fresh as of; `Infinity` when it has no bound. */
  staleness(now: number = this.clock.now()): number {
    return this.freshAt === undefined ? Number.POSITIVE_INFINITY : Math.max(0, now - this.freshAt);
  }

  /** The time this follower is known to hold every write acknowledged before; undefined when unknown. */
  get freshAsOf(): number | undefined {
    return this.freshAt;
  }

  get knownEpoch(): number {
    return this.epoch;
  }

  private covered(at: number): void {
    if (this.freshAt === undefined || at > this.freshAt) this.freshAt = at;
  }

  private forget(epoch: number): void {
    this.epoch = epoch;
    this.freshAt = undefined;
    this.pending = [];
  }
}
