/**
 * One shard's failover duties on one node, as a single seam the shard actor calls at its state changes:
 *
 * - following: watch the leader's heartbeats; when the leader has been silent past the lease (plus this node's
 *   rank × heartbeatMs), claim the next epoch in KV and, having won, ask the machine to `PROMOTE` (catch up to
 *   the stream's tail, append the epoch marker with the expected last sequence, serve);
 * - applying a `handoff` marker that names this node: claim the next epoch and promote at once, no lease wait;
 * - leading: heartbeat, renew the lease from each beat that made the round trip; reads are refused once the lease
 *   has lapsed (a paused leader that wakes up must not answer from stale state).
 *
 * The epoch to lead in comes from the claim (`takeEpoch`), never from counting markers, so two nodes can never lead
 * in the same epoch: the first `kv.create` of `<domain>.<epoch>` wins.
 */
import type { NatsConnection } from 'nats';
import type { MarkerEntry } from '../shards/index.ts';
import { ErrorCode, ShardmindError } from '../protocol/index.ts';
import { answeredWithin, EPOCH_ATTEMPT_MS, type EpochRegistry } from './epoch.ts';
import { HeartbeatMonitor, HeartbeatPublisher, type Heartbeat } from './heartbeat.ts';
import { LeaderLease, LeaseWatcher } from './lease.ts';
import type { TimerClock } from './timers.ts';

export interface ShardFailoverOptions {
  readonly nc: NatsConnection;
  readonly epochs: EpochRegistry;
  readonly domain: string;
  readonly node: string;
  readonly clock: TimerClock;
  readonly leaseMs: number;
  readonly heartbeatMs: number;
  /** This node's failover rank for the domain (0 = first standby). */
  readonly rank: number;
  /** The highest epoch in this node's store (its last applied marker). */
  readonly storeEpoch: () => number;
  /** The sequence this node has applied (sent in heartbeats). */
  readonly position: () => number;
  /** `entryHash` of the entry at `position()`, when this node knows it (carried by heartbeats). */
  readonly positionHash?: () => string | undefined;
  /** Ask the shard machine to become leader (it catches up, appends the epoch marker, serves). */
  readonly promote: () => void;
  /** Tell the machine a newer leader exists (a heartbeat or claim of a later epoch): step down, like a fenced append. */
  readonly deposed: (detail: string) => void;
  readonly log: (line: string) => void;
  /**
   * Optional proof that the cluster's majority is still reachable, run after each heartbeat's flush and before the
   * lease is renewed: `() => logTail(jsm, domain)` (stream info is answered by the stream's Raft leader), resolving
   * to the log's tail (checked against `appendedThrough`). A flush only proves the local nats-server is there; in a
   * network split that server may be on the minority side, and a leader there must let its lease lapse rather than
   * keep answering reads. Rejecting means "do not renew".
   */
  readonly confirmQuorum?: () => Promise<number>;
  /**
   * The sequence of the last message this leader appended (acknowledged or still in flight; the log's tail when it
   * took over): the pipeline's expectation for its next append, less one. A quorum check that reports a later tail
   * means another node appended, e.g. a standby that could not hear this leader's beats (a partial partition) and
   * claimed: this node is deposed at once, instead of answering reads from a history that is no longer the log's
   * until its next write is fenced.
   */
  readonly appendedThrough?: () => number | undefined;
  /**
   * The stream's last sequence from its leader (`() => logTail(jsm, domain)`): with the marker's seq passed to
   * `onMarker`, it keeps a replica that replays history from acting on an old hand-off to itself.
   */
  readonly logTail?: () => Promise<number>;
  /** The log level this node's build understands, advertised in its heartbeats (`log-level.ts`). Default 1. */
  readonly logLevel?: number;
  /**
   * Why this node must not take leadership now, if it must not: its wall clock is too far from the other hosts'
   * (`clock-peers.ts`). A claim is then not made; the countdown re-arms, and another standby claims meanwhile.
   */
  readonly clockProblem?: () => string | undefined;
}

/** How `takeEpoch` tries the KV: for how long, and what makes it give up early. */
export interface TakeEpochOptions {
  /**
   * Keep trying while the KV does not answer (a failed or timed-out attempt) for this long, backing off between
   * attempts; then give up with `UNAVAILABLE`. Default 0: one attempt.
   */
  readonly withinMs?: number;
  /** Stops the attempts (the actor is stopping): gives up with `UNAVAILABLE`. */
  readonly signal?: AbortSignal;
  /**
   * Asked before every attempt after the first: a reason not to lead after all (a live leader heard elsewhere), and
   * the claim gives up with `NOT_LEADER` saying it; undefined to go on.
   */
  readonly stepAside?: () => string | undefined;
  /** Told of each attempt that failed, with the attempt's number (1 first). */
  readonly onAttemptFailed?: (err: unknown, attempt: number) => void;
}

/** First and longest pause between epoch claim attempts that the KV did not answer. */
const ATTEMPT_BACKOFF_MIN_MS = 100;
const ATTEMPT_BACKOFF_MAX_MS = 2_000;

/** What `status` shows about leadership, from this node's point of view. */
export interface FailoverStatus {
  readonly epoch: number;
  readonly leaderNode?: string;
  /** ISO time (local clock) the current leader's last heartbeat arrived; leaders report their own last beat. */
  readonly lastHeartbeatAt?: string;
  /** ISO, leader only. */
  readonly leaseUntil?: string;
  /** ISO, when this node started serving as leader. */
  readonly leadingSince?: string;
}

export class ShardFailover {
  private monitor: HeartbeatMonitor | undefined;
  /** Leader side: listens for a later epoch's heartbeats. */
  private rivals: HeartbeatMonitor | undefined;
  private revalidating = false;
  private confirming = false;
  private quorumLost = false;
  private watcher: LeaseWatcher | undefined;
  private publisher: HeartbeatPublisher | undefined;
  private readonly lease: LeaderLease;
  /** The epoch this node won and has not yet led in (consumed by `takeEpoch`). */
  private won: number | undefined;
  /** Highest epoch seen leading: store markers and heartbeats (not claims: a claim may never lead). */
  private knownEpoch = 0;
  /** Highest epoch this node tried to claim and lost. */
  private lostClaim = 0;
  private leaderEpoch = 0;
  private claiming = false;
  /** The clock problem last logged by a refused claim (logged once, not every lease). */
  private lastClockRefusal: string | undefined;
  private lastBeatSentAt: number | undefined;
  private leadingSince: number | undefined;
  private closed = false;

  constructor(private readonly o: ShardFailoverOptions) {
    this.lease = new LeaderLease(o.leaseMs);
  }

  // ---- following ------------------------------------------------------------------------------------------------

  /** The machine entered `following`: watch the leader. Idempotent. */
  startFollowing(): void {
    this.stopLeading();
    if (this.closed || this.monitor) return;
    this.knownEpoch = Math.max(this.knownEpoch, this.o.storeEpoch());
    this.watcher = new LeaseWatcher({
      clock: this.o.clock,
      leaseMs: this.o.leaseMs,
      heartbeatMs: this.o.heartbeatMs,
      rank: this.o.rank,
      onExpired: () => void this.claimAndPromote('the leader is silent past its lease'),
    });
    this.monitor = new HeartbeatMonitor({
      nc: this.o.nc,
      domain: this.o.domain,
      clock: this.o.clock,
      minEpoch: () => this.knownEpoch,
      onHeartbeat: (hb: Heartbeat) => {
        if (hb.node === this.o.node) return;
        this.knownEpoch = Math.max(this.knownEpoch, hb.epoch);
        this.watcher?.heard();
      },
    });
    this.monitor.start();
    this.watcher.start();
  }

  /** The machine left `following`. Idempotent. */
  stopFollowing(): void {
    this.watcher?.stop();
    this.monitor?.stop();
    this.watcher = undefined;
    this.monitor = undefined;
  }

  /**
   * The follower applied a leadership marker: a new epoch means a new leader (restart the countdown); a handoff
   * naming this node means take over now.
   */
  onMarker(marker: MarkerEntry, seq?: number): void {
    this.knownEpoch = Math.max(this.knownEpoch, marker.epoch);
    if (marker.kind === 'handoff' && marker.to === this.o.node) {
      void this.promoteOnHandoff(marker, seq);
      return;
    }
    this.watcher?.rearm();
  }

  /**
   * A hand-off naming this node is acted on only while it is the log's last word: a replica replaying history (a
   * fresh LMDB, a new follower) meets old hand-offs to itself, and must not lead because of them. A live hand-off
   * is the last entry until its target appends its epoch marker, so "its seq is the stream's tail" tells them apart.
   */
  private async promoteOnHandoff(marker: MarkerEntry, seq: number | undefined): Promise<void> {
    if (marker.epoch < this.o.storeEpoch()) return; // a later leader already appended its epoch marker
    if (seq !== undefined && this.o.logTail) {
      try {
        if ((await this.o.logTail()) > seq) return;
      } catch (err) {
        this.o.log(`hand-off to this node not acted on: the log's tail is unknown: ${String(err)}`);
        return;
      }
    }
    await this.claimAndPromote(`handed off by ${marker.node}`);
  }

  // ---- leading --------------------------------------------------------------------------------------------------

  /** Whether this node holds an epoch it won (a lapsed lease, a hand-off to it) and has not yet led in. */
  get hasWonEpoch(): boolean {
    return this.won !== undefined;
  }

  /**
   * The epoch to write in the epoch marker: the one this node just won, or a fresh claim (a placement leader at
   * start, or a leader resyncing). Resolves to undefined when another node holds the next epoch: do not lead.
   * A KV that does not answer is tried again for `withinMs` at most, never longer: a claim that waited on it
   * without bound kept the shard in `claiming` while another node led (chaos soak, decisions §83), where giving
   * up lets the machine catch up again, read the new leader's marker and follow it.
   */
  async takeEpoch(o: TakeEpochOptions = {}): Promise<number | undefined> {
    if (this.won !== undefined) {
      const e = this.won;
      this.won = undefined;
      return e;
    }
    const deadline = this.o.clock.now() + (o.withinMs ?? 0);
    for (let attempt = 1, pause = ATTEMPT_BACKOFF_MIN_MS; ; attempt++) {
      if (attempt > 1) {
        const why = o.stepAside?.();
        if (why !== undefined) throw new ShardmindError(ErrorCode.NOT_LEADER, why);
      }
      try {
        return await this.claim();
      } catch (err) {
        o.onAttemptFailed?.(err, attempt);
        const left = deadline - this.o.clock.now();
        if (left <= 0 || o.signal?.aborted || this.closed) {
          if (attempt === 1) throw err;
          const detail = (err as Error)?.message ?? String(err);
          throw new ShardmindError(ErrorCode.UNAVAILABLE, `no epoch of ${this.o.domain} claimed in ${attempt} attempts over ${o.withinMs} ms; the last: ${detail}`, { cause: err });
        }
        await pauseFor(Math.min(pause, left), o.signal);
        pause = Math.min(pause * 2, ATTEMPT_BACKOFF_MAX_MS);
      }
    }
  }

  /** The machine is serving as leader in `epoch` (its marker is applied). Idempotent per epoch. */
  startLeading(epoch: number): void {
    this.stopFollowing();
    if (this.closed) return;
    this.leaderEpoch = epoch;
    this.knownEpoch = Math.max(this.knownEpoch, epoch);
    this.lostClaim = 0;
    this.leadingSince ??= this.o.clock.now();
    if (this.publisher) return;
    this.publisher = new HeartbeatPublisher({
      nc: this.o.nc,
      domain: this.o.domain,
      node: this.o.node,
      clock: this.o.clock,
      heartbeatMs: this.o.heartbeatMs,
      ...(this.o.logLevel !== undefined ? { level: this.o.logLevel } : {}),
      // `lease`: followers trust a beat's seq for replica reads only while this leader's lease holds.
      state: () => ({ epoch: this.leaderEpoch, seq: this.o.position(), lease: this.leaseValid(), hash: this.o.positionHash?.() }),
      onRenew: (sentAt) => this.renew(sentAt),
      onError: (err) => this.o.log(`heartbeat failed: ${String(err)}`),
    });
    this.rivals = new HeartbeatMonitor({
      nc: this.o.nc,
      domain: this.o.domain,
      clock: this.o.clock,
      minEpoch: () => this.leaderEpoch + 1,
      onHeartbeat: (hb) => this.depose(`${hb.node} leads in epoch ${hb.epoch}`),
    });
    this.rivals.start();
    this.publisher.start();
  }

  /**
   * A beat sent at `sentAt` came back. While the lease holds, that renews it. Once it has lapsed (this process was
   * paused, or cut off), followers may have started claiming: the lease is renewed only if KV shows no claim past
   * this node's epoch; otherwise this node steps down.
   */
  private renew(sentAt: number): void {
    if (!this.publisher) return;
    const confirm = this.o.confirmQuorum;
    if (!confirm) {
      this.renewConfirmed(sentAt);
      return;
    }
    if (this.confirming) return;
    this.confirming = true;
    confirm().then(
      (tail) => {
        this.confirming = false;
        // Read after the tail arrived: what this leader appended only grows, so its own appends in flight when the
        // tail was read are covered.
        const mine = this.o.appendedThrough?.();
        if (mine !== undefined && tail > mine) {
          this.depose(`the log's tail is seq ${tail}, past seq ${mine}, the last this leader appended: another node appended`);
          return;
        }
        if (this.quorumLost) this.o.log('quorum check passes again: renewing the lease');
        this.quorumLost = false;
        this.renewConfirmed(sentAt);
      },
      (err: unknown) => {
        this.confirming = false;
        if (!this.quorumLost) this.o.log(`lease not renewed while the quorum check fails: ${String(err)}`);
        this.quorumLost = true;
      },
    );
  }

  private renewConfirmed(sentAt: number): void {
    if (!this.publisher) return;
    this.lastBeatSentAt = sentAt;
    if (this.lease.valid(this.o.clock.now()) || this.lease.leaseUntil === 0) {
      this.lease.renew(sentAt);
      return;
    }
    if (this.revalidating) return;
    this.revalidating = true;
    const epoch = this.leaderEpoch;
    this.o.epochs.latest(this.o.domain).then(
      (latest) => {
        this.revalidating = false;
        if (!this.publisher || epoch !== this.leaderEpoch) return;
        if (latest > epoch) this.depose(`epoch ${latest} was claimed while this leader's lease had lapsed`);
        else this.lease.renew(sentAt);
      },
      (err: unknown) => {
        this.revalidating = false;
        this.o.log(`lease revalidation failed: ${String(err)}`);
      },
    );
  }

  private depose(detail: string): void {
    if (!this.publisher) return;
    this.o.log(`deposed: ${detail}`);
    this.stopLeading();
    this.o.deposed(detail);
  }

  /** The machine left `leading` (fenced, handing off, stopping). Idempotent. */
  stopLeading(): void {
    this.publisher?.stop();
    this.publisher = undefined;
    this.rivals?.stop();
    this.rivals = undefined;
    this.lease.revoke();
    this.leadingSince = undefined;
  }

  /** Whether a leader may answer reads now: its lease (renewed by heartbeats) has not lapsed. */
  leaseValid(): boolean {
    return this.publisher !== undefined && this.lease.valid(this.o.clock.now());
  }

  /** Resolves once the lease is valid (a fresh leader's first beat), or false after `timeoutMs`. */
  async waitForLease(timeoutMs: number): Promise<boolean> {
    const deadline = this.o.clock.now() + timeoutMs;
    while (!this.leaseValid()) {
      if (this.closed || this.o.clock.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 5));
    }
    return true;
  }

  status(): FailoverStatus {
    const iso = (t: number | undefined): string | undefined => (t === undefined ? undefined : new Date(t).toISOString());
    if (this.publisher) {
      return strip({
        epoch: this.leaderEpoch,
        leaderNode: this.o.node,
        lastHeartbeatAt: iso(this.lastBeatSentAt),
        leaseUntil: iso(this.lease.leaseUntil || undefined),
        leadingSince: iso(this.leadingSince),
      });
    }
    const last = this.monitor?.last;
    return strip({
      epoch: this.knownEpoch,
      leaderNode: last?.hb.node,
      lastHeartbeatAt: iso(last?.receivedAt),
    });
  }

  /** Stops every timer and subscription. Idempotent. */
  close(): void {
    this.closed = true;
    this.stopFollowing();
    this.stopLeading();
  }

  // ---- claims ---------------------------------------------------------------------------------------------------

  private async claimAndPromote(why: string): Promise<void> {
    if (this.claiming || this.closed) return;
    // Not the placement leader's claim at start or a leader's resync (`takeEpoch`): those hosts already lead, and
    // the host hands off what it leads once its clock is seen to be off (`host.ts`).
    const clockProblem = this.o.clockProblem?.();
    if (clockProblem !== undefined) {
      if (clockProblem !== this.lastClockRefusal) this.o.log(`not claiming leadership (${why}): ${clockProblem}`);
      this.lastClockRefusal = clockProblem;
      this.watcher?.rearm();
      return;
    }
    this.lastClockRefusal = undefined;
    this.claiming = true;
    try {
      const epoch = await this.claim();
      if (epoch === undefined || this.closed) {
        this.watcher?.rearm();
        return;
      }
      this.o.log(`${why}: won epoch ${epoch}, promoting`);
      this.won = epoch;
      this.o.promote();
    } catch (err) {
      this.o.log(`epoch claim failed (${why}): ${String(err)}`);
      this.watcher?.rearm();
    } finally {
      this.claiming = false;
    }
  }

  /**
   * Claims the epoch after the last one this node has seen *lead* (markers, heartbeats), or after its last lost
   * claim. Not after KV's latest key: a candidate that saw the same leader die must race for the same key, so that
   * `kv.create` picks one winner per transition. A lost claim whose winner never leads is passed over on the next
   * attempt, a whole lease later.
   */
  private async claim(): Promise<number | undefined> {
    const epoch = Math.max(this.knownEpoch, this.o.storeEpoch(), this.lostClaim) + 1;
    const attempt = async (): Promise<boolean> => {
      if (await this.o.epochs.claim(this.o.domain, epoch, this.o.node, this.o.clock.now())) return true;
      // Our own earlier claim of this epoch (its marker append failed, e.g. the stream had no leader yet, or we are
      // resyncing, or an attempt that timed out here landed after all): nobody else can hold it, so it is still ours.
      return (await this.o.epochs.holder(this.o.domain, epoch))?.node === this.o.node;
    };
    const ok = await answeredWithin(attempt(), EPOCH_ATTEMPT_MS, `epoch claim ${this.o.domain}.${epoch}`);
    if (!ok) {
      this.lostClaim = Math.max(this.lostClaim, epoch);
      this.o.log(`epoch ${epoch} was claimed by another node`);
      return undefined;
    }
    return epoch;
  }
}

/** Waits `ms`, or less when `signal` aborts; the timer never outlives the wait. */
function pauseFor(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

function strip<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
