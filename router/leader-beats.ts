/**
 * Which shards the router has heard a leader from lately, from the leaders' own heartbeats on `sm.hb.<domain>`
 * (core NATS, a few a second per shard). The router hands a request to a shard to answer the agent directly only
 * while its leader is heard (protocol/hand-off.ts): with no leader subscribed, a handed-off request would get no
 * answer at all, where one the router asks itself gets UNAVAILABLE at the router's timeout.
 */
import type { NatsConnection, Subscription } from 'nats';
import { heartbeatSubject } from '../protocol/index.ts';

const PREFIX = heartbeatSubject('');

export class LeaderBeats {
  private readonly heardAt = new Map<string, number>();
  private readonly sub: Subscription;

  constructor(
    nc: NatsConnection,
    /** How long a heartbeat counts: the failover lease (a leader silent longer is being replaced). */
    private readonly leaseMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.sub = nc.subscribe(heartbeatSubject('*'), {
      callback: (err, msg) => {
        if (!err) this.heardAt.set(msg.subject.slice(PREFIX.length), this.now());
      },
    });
  }

  /** Whether a leader of `domain` has been heard within the lease. */
  heard(domain: string): boolean {
    const at = this.heardAt.get(domain);
    return at !== undefined && this.now() - at <= this.leaseMs;
  }

  stop(): void {
    try {
      this.sub.unsubscribe();
    } catch {
      // The connection is already closed.
    }
  }
}
