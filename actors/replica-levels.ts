/**
 * The leader's census of its replicas' log levels: the highest level every replica it hears from understands, which
 * is the highest level its write pipeline may append (`log-level.ts`).
 *
 * Where the levels come from: every `intervalMs` the leader asks each other node's `sm.ctl.<node>.status` — the
 * reply `shardmind status` shows — and a node whose reply lists a shard of this domain (in any state) is a replica.
 * Its level is the reply's `logLevel`; a host that predates levels sends none and counts as level 1, so an old build
 * that is up is never handed a message it would skip. A replica counts while it was heard within `windowMs`: one that
 * stays silent longer (stopped, unreachable) no longer holds the level down. Such a replica, if it runs a build that
 * knows levels, stops at the first message above its level when it comes back (`needsUpgrade`) rather than drift.
 *
 * The level is decided when what was heard changes, never per write: `onChange` hands it to the pipeline.
 */
import type { NatsConnection } from 'nats';
import { ctlSubject, decodePayload, encodePayload, isRecord, unwrapReply } from '../protocol/index.ts';
import type { TimerClock, TimerHandle } from './timers.ts';

export interface ReplicaLevelsOptions {
  readonly nc: NatsConnection;
  readonly domain: string;
  /** The other nodes of the cluster (any of them may hold a replica: placement, or a `follow`). */
  readonly peers: readonly string[];
  /** This build's level: the census never goes above it. */
  readonly ownLevel: number;
  readonly clock: TimerClock;
  /** How often the peers are asked. */
  readonly intervalMs: number;
  /** How long a replica counts after it was last heard. */
  readonly windowMs: number;
  /** How long one status request may take. */
  readonly requestTimeoutMs: number;
  /** The level changed (also called once the first round is in, when it differs from 1). */
  readonly onChange: (level: number) => void;
}

/** What `status` shows of the census, on the leader. */
export interface ReplicaLevelsStatus {
  /** The highest level every replica heard from recently understands (what this leader appends at most). */
  readonly writeLevel: number;
  /** Each replica heard from recently, and the level it advertised. */
  readonly replicaLevels: Readonly<Record<string, number>>;
}

/** The level a `status` reply advertises for `domain`, or undefined when that host holds no replica of it. */
export function advertisedLevel(reply: unknown, domain: string): number | undefined {
  if (!isRecord(reply) || !Array.isArray(reply['shards'])) return undefined;
  const holds = (reply['shards'] as unknown[]).some((s) => isRecord(s) && s['domain'] === domain);
  if (!holds) return undefined;
  const level = reply['logLevel'];
  return typeof level === 'number' && Number.isInteger(level) && level >= 1 ? level : 1;
}

export class ReplicaLevels {
  private readonly heard = new Map<string, { readonly level: number; readonly at: number }>();
  private level = 1;
  private timer: TimerHandle | undefined;
  private running = false;

  constructor(private readonly o: ReplicaLevelsOptions) {}

  /** Asks at once, then every `intervalMs`. With no peers the level is this build's at once. Idempotent. */
  start(): void {
    if (this.running) return;
    this.running = true;
    if (this.o.peers.length === 0) this.decide();
    else void this.round();
  }

  /** Stops asking. Idempotent. */
  stop(): void {
    this.running = false;
    if (this.timer !== undefined) this.o.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  get writeLevel(): number {
    return this.level;
  }

  status(): ReplicaLevelsStatus {
    const replicaLevels: Record<string, number> = {};
    for (const [node, h] of this.live()) replicaLevels[node] = h.level;
    return { writeLevel: this.level, replicaLevels };
  }

  private async round(): Promise<void> {
    await Promise.all(this.o.peers.map((peer) => this.ask(peer)));
    if (!this.running) return;
    this.decide();
    this.timer = this.o.clock.setTimeout(() => void this.round(), this.o.intervalMs);
  }

  private async ask(peer: string): Promise<void> {
    try {
      const m = await this.o.nc.request(ctlSubject(peer, 'status'), encodePayload({ v: 1 }, 'msgpack'), { timeout: this.o.requestTimeoutMs });
      const level = advertisedLevel(unwrapReply(decodePayload(m.data, 'msgpack')), this.o.domain);
      if (level === undefined) this.heard.delete(peer);
      else this.heard.set(peer, { level, at: this.o.clock.now() });
    } catch {
      // No answer (down, unreachable, no such host): what was heard before counts until the window ends.
    }
  }

  private *live(): Generator<[string, { readonly level: number; readonly at: number }]> {
    const since = this.o.clock.now() - this.o.windowMs;
    for (const entry of this.heard) if (entry[1].at >= since) yield entry;
  }

  private decide(): void {
    let level = this.o.ownLevel;
    for (const [, h] of this.live()) level = Math.min(level, h.level);
    if (level === this.level) return;
    this.level = level;
    this.o.onChange(level);
  }
}
