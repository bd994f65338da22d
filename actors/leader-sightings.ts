/**
 * When this host last heard each domain's leader: every heartbeat on `sm.hb.*` (see `heartbeat.ts`), by this
 * host's own clock (senders' clocks may disagree). The shard guard uses it to tell "no leader right now" (answer
 * NOT_LEADER at once, so clients retry quickly) from "a leader is serving" (stay silent, the leader answers).
 * Only the cluster config's domains are kept: anyone who may publish could otherwise grow the map without bound
 * with beats on made-up `sm.hb.<token>` subjects.
 */
import type { NatsConnection, Subscription } from 'nats';
import { heartbeatSubject } from '../protocol/index.ts';
import type { Clock } from './clock.ts';
import { guarded } from './guarded.ts';
import { parseHeartbeat } from './heartbeat.ts';

export interface Sighting {
  readonly node: string;
  readonly epoch: number;
  readonly seq: number;
  /** When this host received it (its own clock). */
  readonly seenAt: number;
}

export class LeaderSightings {
  private readonly latest = new Map<string, Sighting>();
  private subscription: Subscription | undefined;
  private since = 0;
  private readonly domains: ReadonlySet<string>;

  constructor(
    private readonly clock: Clock,
    private readonly leaseMs: number,
    /** The cluster config's domains: beats for any other are ignored. */
    domains: Iterable<string>,
  ) {
    this.domains = new Set(domains);
  }

  /** Starts listening on `sm.hb.*`. Idempotent. */
  listen(nc: NatsConnection): void {
    if (this.subscription) return;
    this.since = this.clock.now();
    const prefix = heartbeatSubject('');
    this.subscription = nc.subscribe(heartbeatSubject('*'), {
      callback: guarded('leader sightings', (msg) => {
        const domain = msg.subject.slice(prefix.length);
        if (!this.domains.has(domain)) return;
        const hb = parseHeartbeat(msg.data);
        if (!hb) return;
        const now = this.clock.now();
        const prior = this.latest.get(domain);
        // A heartbeat of an older epoch (a paused leader waking up) does not hide the newer leader.
        if (prior && prior.epoch > hb.epoch && now - prior.seenAt <= this.leaseMs) return;
        this.latest.set(domain, { node: hb.node, epoch: hb.epoch, seq: hb.seq, seenAt: now });
      }),
    });
  }

  /** Stops listening. Idempotent. */
  stop(): void {
    this.subscription?.unsubscribe();
    this.subscription = undefined;
  }

  /** The domain's leader as last heard, if any. */
  get(domain: string): Sighting | undefined {
    return this.latest.get(domain);
  }

  /**
   * `true` when the domain's leader was heard within the lease; `false` when not; `undefined` while this host has
   * listened for less than a lease without hearing one (it cannot tell yet).
   */
  isLive(domain: string): boolean | undefined {
    const now = this.clock.now();
    const s = this.latest.get(domain);
    if (s && now - s.seenAt <= this.leaseMs) return true;
    if (!this.subscription || now - this.since < this.leaseMs) return undefined;
    return false;
  }
}
