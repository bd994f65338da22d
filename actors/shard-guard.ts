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
 *
 * It also answers UNKNOWN_DOMAIN on `sm.replica.<domain>.<op>` for a domain the config does not have, and nothing
 * for a known one: a typo'd domain was "no responders", which clients retry until their deadline. For a known
 * domain the guard cannot tell whether some replica serves it (every leader and follower does), so it stays silent;
 * the price is that a known domain with no replica subscribed at all times out instead of getting "no responders".
 * The per-node subject `sm.replica.<domain>.<op>.<node>` has no guard: its "no responders" is how clients and routers
 * learn that a node holds no replica of a domain, and fall back to any replica.
 */
import type { NatsConnection, Subscription } from 'nats';
import { ErrorCode, ShardmindError, errorReply } from '../protocol/index.ts';
import { guarded, ReportThrottle, stderrReport, type GuardReport } from './guarded.ts';
import type { LeaderSightings } from './leader-sightings.ts';
import { answerable, respond } from './respond.ts';

export const SHARD_GUARD_QUEUE = 'sm-shard-guard';
export const REPLICA_GUARD_QUEUE = 'sm-replica-guard';
const SHARD_PREFIX = 'sm.shard.';
const REPLICA_PREFIX = 'sm.replica.';

export function serveShardGuard(
  nc: NatsConnection,
  known: readonly string[],
  sightings: LeaderSightings,
  leadsHere: (domain: string) => boolean,
  report: GuardReport = stderrReport,
): Subscription[] {
  const names = new Set(known);
  const throttle = new ReportThrottle(report);
  const unknownDomain = (domain: string): ShardmindError =>
    new ShardmindError(ErrorCode.UNKNOWN_DOMAIN, `domain "${domain}" is not in the cluster config (domains: ${[...names].join(', ')})`);
  const shards = nc.subscribe('sm.shard.*.*', {
    queue: SHARD_GUARD_QUEUE,
    callback: guarded('shard guard', (msg) => {
      if (!msg.reply) return;
      // `sm.shard.<domain>.<op>`: this runs for every shard request (the leader gets its own copy), so no split.
      const end = msg.subject.indexOf('.', SHARD_PREFIX.length);
      const domain = msg.subject.slice(SHARD_PREFIX.length, end < 0 ? undefined : end);
      // The common case first: a domain this host leads, which its own subscription answers.
      if (leadsHere(domain)) return;
      // Only inboxes are answered (decisions §69); checked once the guard may answer, not on the common path.
      if (!answerable(msg, undefined)) return;
      if (!names.has(domain)) {
        respond(msg, errorReply(unknownDomain(domain)));
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
    }, throttle),
  });
  const replicas = nc.subscribe('sm.replica.*.*', {
    queue: REPLICA_GUARD_QUEUE,
    callback: guarded('replica guard', (msg) => {
      if (!msg.reply) return;
      const domain = msg.subject.slice(REPLICA_PREFIX.length, msg.subject.indexOf('.', REPLICA_PREFIX.length));
      if (!names.has(domain) && answerable(msg, undefined)) respond(msg, errorReply(unknownDomain(domain)));
    }, throttle),
  });
  return [shards, replicas];
}
