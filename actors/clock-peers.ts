/**
 * How far this host's wall clock is from the other hosts'. A leader stamps `recordedAt` with its wall clock and
 * judges an agent's `observedAt` against it (refused when more than five minutes ahead). A leader whose clock is
 * minutes off therefore refuses correct writes (behind) or stamps facts in the future that then win `one`-predicate
 * ties and `asOf` questions against correct writes from the next leader (ahead). Entries carry the time, so replicas
 * still agree with each other: the error is in what they all agree on (review-session11b, finding 8).
 *
 * Every host publishes its wall clock on core NATS, `sm.clk.<node>` (`{ v: 1, node, at }`, msgpack, every
 * `intervalMs`), and reads everyone else's. A reading `at − now` is the peer's offset minus the message's one-way
 * delay, so the largest of a peer's recent readings is the closest to its true offset (NTP's filter does the same).
 * This host is **off** when a majority of the peers heard within the last few beats, at least two of them, differ
 * from it by more than `boundMs`: with one peer there is no telling which of the two clocks is wrong, and a minority
 * of wrong peers does not make a correct host look wrong. A host found off stays off while every peer it still hears
 * differs from it by more than the bound: when a Mini of three dies, the two left cannot outvote each other, and the
 * one already found wrong must not take the dead Mini's shards because of that. The host's offset from the cluster
 * is the median of the peers' offsets, negated (of two middle ones, the nearer to this host's clock).
 *
 * Only hosts publish here: with a login, the agent and operator roles may not (`cli/nats-auth.ts`).
 */
import type { NatsConnection, Subscription } from 'nats';
import { clockSubject, decodePayload, encodePayload } from '../protocol/index.ts';
import type { Clock } from './clock.ts';
import { guarded } from './guarded.ts';
import type { TimerClock, TimerHandle } from './timers.ts';

/**
 * Past this, a host does not take leadership and hands off what it leads. NTP keeps Minis within milliseconds of each
 * other; a clock tens of seconds off has missed a step (a wake from sleep, a manual change), and by then a `one`
 * predicate's "newest" can be decided by the clock instead of by what happened.
 */
export const CLOCK_SKEW_BOUND_MS = 30_000;

/** Readings kept per peer: the filter's window (`intervalMs` × this). */
const READINGS_KEPT = 8;
/** A peer not heard for this many beats no longer counts. */
const PEER_SILENT_BEATS = 5;

export interface ClockReading {
  /**
   * This host's wall clock minus the cluster's (the median of the peers'), in ms: positive when it runs ahead.
   * Absent until a peer is heard.
   */
  readonly offsetMs?: number;
  /** Peers heard recently. */
  readonly peers: number;
  /** A majority of at least two peers put this host's clock more than the bound away from theirs. */
  readonly off: boolean;
}

export interface ClockPeersOptions {
  readonly nc: NatsConnection;
  readonly node: string;
  /** The cluster's nodes: beats of any other name are ignored (a bounded map). */
  readonly nodes: readonly string[];
  /** The wall clock that stamps `recordedAt` (what this compares). */
  readonly wallClock: Clock;
  /** Schedules the beats and times the peers' silence (monotonic). */
  readonly timers: TimerClock;
  readonly intervalMs?: number;
  readonly boundMs?: number;
  /** Told when the host's clock goes off or comes back (for the log). */
  readonly onChange?: (reading: ClockReading) => void;
}

interface PeerReadings {
  readonly offsets: number[];
  lastHeard: number;
}

export class ClockPeers {
  private readonly peers = new Map<string, PeerReadings>();
  private readonly nodes: ReadonlySet<string>;
  private readonly intervalMs: number;
  private readonly boundMs: number;
  private subscription: Subscription | undefined;
  private timer: TimerHandle | undefined;
  private wasOff = false;

  constructor(private readonly o: ClockPeersOptions) {
    this.nodes = new Set(o.nodes.filter((n) => n !== o.node));
    this.intervalMs = o.intervalMs ?? 1_000;
    this.boundMs = o.boundMs ?? CLOCK_SKEW_BOUND_MS;
  }

  /** Starts beating and listening. Idempotent. */
  start(): void {
    if (this.subscription) return;
    this.subscription = this.o.nc.subscribe(clockSubject('*'), {
      callback: guarded('clock peers', (msg) => this.heard(msg.data)),
    });
    this.beat();
  }

  /** Stops both. Idempotent. */
  stop(): void {
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    if (this.timer !== undefined) this.o.timers.clearTimeout(this.timer);
    this.timer = undefined;
  }

  reading(): ClockReading {
    const now = this.o.timers.now();
    const offsets: number[] = [];
    for (const p of this.peers.values()) {
      if (now - p.lastHeard <= PEER_SILENT_BEATS * this.intervalMs) offsets.push(Math.max(...p.offsets));
    }
    return judgeClock(offsets, this.wasOff, this.boundMs);
  }

  /**
   * Whether `node`'s clock, as heard from here, is also more than the bound from the cluster's (this host's offset
   * added back): a hand-off away from a host whose clock is off must not go to another such host. A peer not heard
   * recently counts as off: its clock cannot be vouched for.
   */
  isPeerOff(node: string): boolean {
    const p = this.peers.get(node);
    if (!p || this.o.timers.now() - p.lastHeard > PEER_SILENT_BEATS * this.intervalMs) return true;
    return Math.abs(Math.max(...p.offsets) + (this.reading().offsetMs ?? 0)) > this.boundMs;
  }

  /**
   * The host's clock is too far from the cluster's to lead: says why, or undefined when it is fine (or cannot be
   * judged).
   */
  problem(): string | undefined {
    const r = this.reading();
    if (!r.off || r.offsetMs === undefined) return undefined;
    return `this host's clock is ${describeOffset(r.offsetMs)} the other hosts' (${r.peers} peers); fix its time (NTP) to let it lead`;
  }

  private heard(data: Uint8Array): void {
    const beat = parseClockBeat(data);
    if (!beat || !this.nodes.has(beat.node)) return;
    const offset = beat.at - this.o.wallClock.now();
    let p = this.peers.get(beat.node);
    if (!p) this.peers.set(beat.node, (p = { offsets: [], lastHeard: 0 }));
    p.offsets.push(offset);
    if (p.offsets.length > READINGS_KEPT) p.offsets.shift();
    p.lastHeard = this.o.timers.now();
  }

  private beat(): void {
    if (!this.subscription) return;
    try {
      this.o.nc.publish(clockSubject(this.o.node), encodePayload({ v: 1, node: this.o.node, at: this.o.wallClock.now() }, 'msgpack'));
    } catch {
      // The connection is closing or reconnecting: the next beat tries again.
    }
    const r = this.reading();
    if (r.off !== this.wasOff) {
      this.wasOff = r.off;
      this.o.onChange?.(r);
    }
    this.timer = this.o.timers.setTimeout(() => this.beat(), this.intervalMs);
  }
}

/**
 * The rule, on the peers' offsets from this host (each `peer − this`, ms): see the module's comment. `wasOff` is the
 * last judgement, which holds while every peer still differs by more than the bound.
 */
export function judgeClock(peerOffsets: readonly number[], wasOff: boolean, boundMs: number): ClockReading {
  if (peerOffsets.length === 0) return { peers: 0, off: false };
  const offsets = [...peerOffsets].sort((a, b) => a - b);
  const mid = offsets.length >> 1;
  // With an even count the two middle readings may disagree (a 3-Mini cluster: one peer right, one wrong): take
  // the one nearer this host's clock, not their mean, which would make a right clock look half wrong.
  const lower = offsets[offsets.length % 2 === 1 ? mid : mid - 1]!;
  const median = Math.abs(lower) <= Math.abs(offsets[mid]!) ? lower : offsets[mid]!;
  const far = offsets.filter((x) => Math.abs(x) > boundMs).length;
  const outvoted = offsets.length >= 2 && far * 2 > offsets.length;
  const stillApart = wasOff && far === offsets.length;
  return { offsetMs: Math.round(-median) || 0, peers: offsets.length, off: outvoted || stillApart };
}

/** "12.3 s ahead of" / "10 min behind". */
export function describeOffset(offsetMs: number): string {
  const abs = Math.abs(offsetMs);
  const size = abs >= 120_000 ? `${Math.round(abs / 60_000)} min` : `${(abs / 1000).toFixed(1)} s`;
  return `${size} ${offsetMs >= 0 ? 'ahead of' : 'behind'}`;
}

function parseClockBeat(data: Uint8Array): { node: string; at: number } | undefined {
  try {
    const b = decodePayload(data, 'msgpack') as { node?: unknown; at?: unknown } | null;
    if (!b || typeof b.node !== 'string' || typeof b.at !== 'number' || !Number.isFinite(b.at)) return undefined;
    return { node: b.node, at: b.at };
  } catch {
    return undefined;
  }
}
