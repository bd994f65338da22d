/**
 * The shard-subject guard. Every host runs it in one queue group on `sm.shard.*.*`, so exactly one host answers:
 * - a domain the cluster config does not have: UNKNOWN_DOMAIN (instead of a timeout);
 * - a known domain whose leader has not been heard within the lease: NOT_LEADER (retryable) at once, so clients
 *   retry quickly during a failover or hand-off gap instead of waiting out their timeout;
 * - a known domain with a live leader: nothing (the leader answers).
 * A domain this very host leads is never refused: heartbeats are timer-driven, and on a saturated event loop they
 * arrive late while the leader is serving fine — the guard would then answer NOT_LEADER ahead of the leader's own
 * reply (measured: ~500 spurious refusals per bench run under load). Local knowledge beats heartbeat timing.
 * The wildcard subscription means requests never get "no responders", so this guard must cover both cases.
 */
import type { NatsConnection, Subscription } from 'nats';
import { ErrorCode, ShardmindError, errorReply } from '../protocol/index.ts';
import { guarded, ReportThrottle, stderrReport, type GuardReport } from './guarded.ts';
import type { LeaderSightings } from './leader-sightings.ts';
import { respond } from './respond.ts';

export const SHARD_GUARD_QUEUE = 'sm-shard-guard';
const SHARD_PREFIX = 'sm.shard.';

export function serveShardGuard(
  nc: NatsConnection,
  known: readonly string[],
  sightings: LeaderSightings,
  leadsHere: (domain: string) => boolean,
  report: GuardReport = stderrReport,
): Subscription {
  const names = new Set(known);
  return nc.subscribe('sm.shard.*.*', {
    queue: SHARD_GUARD_QUEUE,
    callback: guarded('shard guard', (msg) => {
      if (!msg.reply) return;
      // `sm.shard.<domain>.<op>`: this runs for every shard request (the leader gets its own copy), so no split.
      const end = msg.subject.indexOf('.', SHARD_PREFIX.length);
      const domain = msg.subject.slice(SHARD_PREFIX.length, end < 0 ? undefined : end);
      // The common case first: a domain this host leads, which its own subscription answers.
      if (leadsHere(domain)) return;
      if (!names.has(domain)) {
        const e = new ShardmindError(
          ErrorCode.UNKNOWN_DOMAIN,
          `domain "${domain}" is not in the cluster config (domains: ${[...names].join(', ')})`,
        );
        respond(msg, errorReply(e));
        return;
      }
      if (sightings.isLive(domain) === false) {
        const last = sightings.get(domain);
        const e = new ShardmindError(
          ErrorCode.NOT_LEADER,
          last
            ? `no leader for "${domain}" right now (last heard ${last.node}, epoch ${last.epoch}); retry`
            : `no leader for "${domain}" has been heard yet; retry`,
        );
        respond(msg, errorReply(e));
      }
    }, new ReportThrottle(report)),
  });
}
