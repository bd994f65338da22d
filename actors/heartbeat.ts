/**
 * Shard leader heartbeats on core NATS `sm.hb.<domain>`: `{ v: 1, node, epoch, seq, at, lease, hash?, level }`, msgpack.
 *
 * The publisher runs on the leader: every `heartbeatMs` it publishes, then flushes (a PING/PONG round trip to its
 * server); a flush that comes back renews the leader's lease from the send time. At most one flush is in flight, so
 * a leader cut off from NATS stops renewing instead of queueing heartbeats.
 *
 * The monitor runs on followers: it decodes heartbeats, ignores those of an older epoch than the follower knows
 * (a deposed leader that has not noticed yet), and reports the rest with the local receive time.
 */
import type { NatsConnection, Subscription } from 'nats';
import { decodePayload, encodePayload, heartbeatSubject } from '../protocol/index.ts';
import type { TimerClock, TimerHandle } from './timers.ts';
import { guarded } from './guarded.ts';

/** What a heartbeat carries on the wire. */
export interface Heartbeat {
  readonly v: 1;
  readonly node: string;
  readonly epoch: number;
  /** The leader's applied sequence when it sent this. */
  readonly seq: number;
  /** The leader's clock, ISO-8601. */
  readonly at: string;
  /**
   * The leader's lease was valid when it sent this (it was answering reads). Followers bound their staleness only
   * by such beats (`freshness.ts`). Absent from hosts that predate replica reads: read as false.
   */
  readonly lease?: boolean;
  /**
   * `entryHash` of the leader's entry at `seq`, when it knows it. A follower at the same `seq` whose entry hashes
   * differently applied something the log did not keep: it checks with the stream leader and rebuilds (decisions §16).
   */
  readonly hash?: string;
  /**
   * The log level the leader's build understands (`log-level.ts`); absent from hosts that predate levels: read as 1.
   * What it may append is lower while a replica understands less (`replica-levels.ts`).
   */
  readonly level?: number;
}

export interface HeartbeatPublisherOptions {
  readonly nc: NatsConnection;
  readonly domain: string;
  readonly node: string;
  readonly clock: TimerClock;
  readonly heartbeatMs: number;
  /** The log level this leader's build understands, advertised in every beat. Default 1 (as before levels). */
  readonly level?: number;
  /** The leader's current epoch and applied sequence, read at each beat. */
  readonly state: () => { readonly epoch: number; readonly seq: number; readonly lease?: boolean; readonly hash?: string };
  /** A beat sent at `sentAt` made the round trip: renew the lease. */
  readonly onRenew: (sentAt: number) => void;
  /** A publish or flush failed (connection closed). Logged by the caller; beating goes on. */
  readonly onError?: (err: unknown) => void;
}

/** The leader side. `start()` beats at once and then every `heartbeatMs`; `stop()` cancels. Both idempotent. */
export class HeartbeatPublisher {
  private timer: TimerHandle | undefined;
  private running = false;
  private flushing = false;

  constructor(private readonly o: HeartbeatPublisherOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.beat();
  }

  stop(): void {
    this.running = false;
    if (this.timer !== undefined) this.o.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Beats now, out of schedule (e.g. right after winning an epoch, so followers stop their countdown). */
  beatNow(): void {
    if (!this.running) return;
    if (this.timer !== undefined) this.o.clock.clearTimeout(this.timer);
    this.beat();
  }

  private beat(): void {
    this.timer = this.o.clock.setTimeout(() => this.beat(), this.o.heartbeatMs);
    if (this.flushing || this.o.nc.isClosed()) return;
    const sentAt = this.o.clock.now();
    const { epoch, seq, lease, hash } = this.o.state();
    const hb: Heartbeat = {
      v: 1,
      node: this.o.node,
      epoch,
      seq,
      at: new Date(sentAt).toISOString(),
      lease: lease === true,
      ...(hash !== undefined ? { hash } : {}),
      level: this.o.level ?? 1,
    };
    try {
      this.o.nc.publish(heartbeatSubject(this.o.domain), encodePayload(hb, 'msgpack'));
    } catch (err) {
      this.o.onError?.(err);
      return;
    }
    this.flushing = true;
    this.o.nc.flush().then(
      () => {
        this.flushing = false;
        if (this.running) this.o.onRenew(sentAt);
      },
      (err: unknown) => {
        this.flushing = false;
        this.o.onError?.(err);
      },
    );
  }
}

export interface HeartbeatMonitorOptions {
  readonly nc: NatsConnection;
  readonly domain: string;
  readonly clock: TimerClock;
  /** The highest epoch this follower knows (from the log's markers); older heartbeats are ignored. */
  readonly minEpoch: () => number;
  readonly onHeartbeat: (hb: Heartbeat, receivedAt: number) => void;
}

/** The follower side: the last current heartbeat, for the lease watcher and for `status`. */
export class HeartbeatMonitor {
  private sub: Subscription | undefined;
  private latest: { readonly hb: Heartbeat; readonly receivedAt: number } | undefined;

  constructor(private readonly o: HeartbeatMonitorOptions) {}

  /** Subscribes. Idempotent. */
  start(): void {
    if (this.sub) return;
    this.sub = this.o.nc.subscribe(heartbeatSubject(this.o.domain), {
      callback: guarded(`heartbeat ${this.o.domain}`, (msg) => {
        const hb = parseHeartbeat(msg.data);
        if (!hb || hb.epoch < this.o.minEpoch()) return;
        const receivedAt = this.o.clock.now();
        this.latest = { hb, receivedAt };
        try {
          this.o.onHeartbeat(hb, receivedAt);
        } catch {
          // A listener's bug must not kill the subscription; the watcher will simply suspect the leader.
        }
      }),
    });
  }

  /** The last heartbeat accepted and when (local clock) it arrived. */
  get last(): { readonly hb: Heartbeat; readonly receivedAt: number } | undefined {
    return this.latest;
  }

  stop(): void {
    this.sub?.unsubscribe();
    this.sub = undefined;
  }
}

/** A heartbeat body, or undefined for anything malformed (heartbeats are not requests: nobody to answer). */
export function parseHeartbeat(data: Uint8Array): Heartbeat | undefined {
  let body: unknown;
  try {
    body = decodePayload(data, 'msgpack');
  } catch {
    return undefined;
  }
  if (typeof body !== 'object' || body === null) return undefined;
  const b = body as Record<string, unknown>;
  if (b['v'] !== 1 || typeof b['node'] !== 'string' || typeof b['at'] !== 'string') return undefined;
  if (!Number.isInteger(b['epoch']) || !Number.isInteger(b['seq'])) return undefined;
  const hash = typeof b['hash'] === 'string' && b['hash'].length <= 128 ? { hash: b['hash'] } : {};
  const level = Number.isInteger(b['level']) && (b['level'] as number) >= 1 ? (b['level'] as number) : 1;
  return { v: 1, node: b['node'], epoch: b['epoch'] as number, seq: b['seq'] as number, at: b['at'], lease: b['lease'] === true, ...hash, level };
}
