/**
 * Which shards the router has heard a leader from lately, from the leaders' own heartbeats on `sm.hb.<domain>`
 * (core NATS, a few a second per shard). The router hands a request to a shard to answer the agent directly only
 * while its leader is heard (protocol/hand-off.ts): with no leader subscribed, a handed-off request would get no
 * answer at all, where one the router asks itself gets UNAVAILABLE at the router's timeout.
 */
import type { NatsConnection, Subscription } from 'nats';
import { heartbeatSubject } from '../protocol/index.ts';
import { guarded } from './guarded.ts';

const PREFIX = heartbeatSubject('');

export class LeaderBeats {
  private readonly heardAt = new Map<string, number>();
  private readonly sub: Subscription;

  constructor(
    nc: NatsConnection,
    /**
     * The configured domains: only their beats are kept. Anyone allowed to publish on `sm.hb.*` could otherwise grow
     * the map by a key per made-up subject.
     */
    private readonly domains: ReadonlySet<string>,
    /** How long a heartbeat counts: the failover lease (a leader silent longer is being replaced). */
    private readonly leaseMs: number,
    private readonly now: () => number = Date.now,
    log: (line: string) => void = (line) => console.error(`[leader-beats] ${line}`),
  ) {
    this.sub = nc.subscribe(heartbeatSubject('*'), {
      callback: guarded('leader heartbeats', log, (msg) => {
        const domain = msg.subject.slice(PREFIX.length);
        if (this.domains.has(domain)) this.heardAt.set(domain, this.now());
      }),
    });
  }

  /** How many domains have been heard at all (never more than the configured ones). */
  get tracked(): number {
    return this.heardAt.size;
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
