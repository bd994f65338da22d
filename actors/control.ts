/**
 * A host's control subjects, `sm.ctl.<node>.<op>` (msgpack, or JSON with the header, like every other subject):
 * - `status` — every shard actor on this host: role, machine state, appliedSeq, epoch, lag, leader, heartbeat;
 * - `ping` — liveness;
 * - `digest {domain}` — the shard's content digest and appliedSeq (replicas converge when digests are equal);
 * - `follow {domain}` — start tailing a domain not placed here (a migration target: add before remove);
 * - `unfollow {domain}` — stop a follower (after a migration, or when the config no longer places it here);
 * - `handoff {domain, to}` — the leader finishes in-flight writes, appends a hand-off marker naming `to`, follows.
 *   Refused, changing nothing, unless `to` is another node of the cluster that answers and holds a replica of the
 *   domain able to take over (`handOffTarget`): a marker naming any other node leaves the domain without a leader.
 * - `compact {domain}` — the leader snapshots its store into the domain's snapshot bucket, then purges the log below
 *   it (`compaction.ts`); answers when both are done. NOT_LEADER on a host that does not lead it.
 * - `backup {domain}` — the leader copies its store into the domain's backup bucket (`backup.ts`) for `shardmind
 *   backup` to download; no purge. NOT_LEADER on a host that does not lead it.
 * - `prune {domain, inactiveDays?, decayedBelow?}` — the leader forgets facts closed more than `inactiveDays` ago
 *   and/or active ones decayed below `decayedBelow` (the memory's own compaction); NOT_LEADER elsewhere.
 * Every op answers; errors are error replies.
 */
import type { ClockReading } from './clock-peers.ts';
import type { Msg, NatsConnection, Subscription } from 'nats';
import {
  ErrorCode,
  ShardmindError,
  badRequest,
  ctlSubject,
  decodePayload,
  encodePayload,
  encodingOf,
  errorReply,
  isRecord,
  readHeaders,
} from '../protocol/index.ts';
import { detached, guarded, ReportThrottle, stderrReport, type GuardReport } from './guarded.ts';
import { respond } from './respond.ts';
import type { PruneReport, ShardStatus } from './shard-actor.ts';
import type { CompactReport } from './compaction.ts';
import type { BackupReport } from './backup.ts';

/** What `sm.ctl.<node>.status` answers. */
export interface HostStatusReply {
  readonly v: 1;
  readonly node: string;
  readonly pid: number;
  readonly startedAt: string;
  readonly shards: readonly ShardStatus[];
  /** Messages passed between this host's actors, by `<to>:<event>`. */
  readonly relay: Readonly<Record<string, number>>;
  /** The host is stopping: it hands off what it leads and takes nothing new. */
  readonly draining?: boolean;
  /**
   * The log level this host's build understands (`log-level.ts`). Absent from hosts that predate levels: leaders
   * count them as level 1 (`replica-levels.ts`).
   */
  readonly logLevel?: number;
  /**
   * The digest of what this host's config says that every host must agree on (`configDigest`: domains, predicate
   * specs, placement, replication); `shardmind status` warns when hosts differ. Absent from older hosts.
   */
  readonly configDigest?: string;
  /**
   * This host's wall clock against the other hosts' (`clock-peers.ts`): its offset from their median, how many were
   * heard, and whether it is off by more than the bound (then it takes no leadership). Absent from older hosts.
   */
  readonly clock?: ClockReading;
}

export interface PingReply {
  readonly v: 1;
  readonly node: string;
  readonly at: string;
}

export interface DigestReply {
  readonly v: 1;
  readonly node: string;
  readonly domain: string;
  readonly appliedSeq: number;
  readonly digest: string;
}

export interface HandoffReply {
  readonly v: 1;
  readonly node: string;
  readonly domain: string;
  readonly to: string;
  /** The hand-off marker's sequence: the target leads once it has applied this. */
  readonly seq: number;
  readonly epoch: number;
  /** When this leader stopped taking requests (ISO). */
  readonly intakeStoppedAt: string;
}

/** What the host does for each op; the control layer decodes, validates the request and replies. */
export interface ControlOptions {
  readonly node: string;
  /** Every node of the cluster config: a hand-off names one of them. */
  readonly nodes: readonly string[];
  now(): number;
  status(): HostStatusReply;
  digest(domain: string): DigestReply;
  follow(domain: string): ShardStatus;
  unfollow(domain: string): Promise<{ readonly v: 1; readonly node: string; readonly domain: string; readonly stopped: boolean }>;
  handoff(domain: string, to: string): Promise<HandoffReply>;
  compact(domain: string): Promise<CompactReport>;
  backup(domain: string): Promise<BackupReport>;
  prune(domain: string, o: PruneOptions): Promise<PruneReport>;
  /** Where a command that escaped its error reply (a bug) is reported; stderr by default. */
  readonly report?: GuardReport;
}

/** What to prune: at least one of the two. */
export interface PruneOptions {
  readonly inactiveDays?: number;
  readonly decayedBelow?: number;
}

/** Subscribes the control subjects; unsubscribe the results to stop. */
export function serveControl(nc: NatsConnection, o: ControlOptions): Subscription[] {
  const throttle = new ReportThrottle(o.report ?? stderrReport);
  const serve = (op: string, answer: (body: Record<string, unknown>) => unknown): Subscription =>
    nc.subscribe(ctlSubject(o.node, op), {
      callback: guarded(
        `control ${op}`,
        (msg) => {
          if (msg.reply) detached(reply(msg, answer), `control ${op}`, throttle);
        },
        throttle,
      ),
    });
  return [
    serve('status', () => o.status()),
    serve('ping', (): PingReply => ({ v: 1, node: o.node, at: new Date(o.now()).toISOString() })),
    serve('digest', (b) => o.digest(domainOf(b))),
    serve('follow', (b) => ({ v: 1, node: o.node, shard: o.follow(domainOf(b)) })),
    serve('unfollow', (b) => o.unfollow(domainOf(b))),
    serve('handoff', async (b) => {
      const domain = domainOf(b);
      const to = await handOffTarget(nc, o, domain, b['to']);
      return o.handoff(domain, to);
    }),
    serve('compact', (b) => o.compact(domainOf(b))),
    serve('backup', (b) => o.backup(domainOf(b))),
    serve('prune', (b) => o.prune(domainOf(b), pruneOptionsOf(b))),
  ];
}

/** How long a hand-off waits for its target's status before refusing. */
const TARGET_STATUS_TIMEOUT_MS = 2_000;

/** States from which a replica takes over once it applies a hand-off marker naming it (it is, or will be, tailing). */
const CAN_TAKE_OVER = new Set(['starting', 'bootstrapping', 'catchingUp', 'following']);

/**
 * Checks that `to` can take `domain` over before any marker is written: a node of the cluster, not this one, whose
 * host answers, is not stopping, and holds a replica of the domain in a state that applies the marker. Anything
 * that may publish on sm.ctl can ask, and a marker naming a node that cannot take over leaves the domain without a
 * leader until the lease lapses. `shardmind migrate` makes its target follow and catch up first; the raw op checks
 * only that a replica exists, so a target far behind still takes over once it has caught up.
 */
async function handOffTarget(nc: NatsConnection, o: ControlOptions, domain: string, to: unknown): Promise<string> {
  if (typeof to !== 'string' || to === '') throw badRequest('to', 'must name the node to hand the shard to');
  if (to === o.node) throw badRequest('to', `"${to}" is this node; name the node to hand ${domain} to`);
  if (!o.nodes.includes(to)) throw badRequest('to', `"${to}" is not a node of this cluster (${o.nodes.join(', ')})`);
  const host = await askHostStatus(nc, to, TARGET_STATUS_TIMEOUT_MS);
  const unchanged = `${domain} stays on ${o.node}`;
  if (!host) {
    throw new ShardmindError(ErrorCode.UNAVAILABLE, `to: "${to}" did not answer its status within ${TARGET_STATUS_TIMEOUT_MS} ms; ${unchanged}`);
  }
  if (host.draining) throw new ShardmindError(ErrorCode.UNAVAILABLE, `to: "${to}" is stopping; ${unchanged}`);
  const replica = host.shards.find((s) => s.domain === domain);
  if (!replica) {
    throw new ShardmindError(
      ErrorCode.BAD_REQUEST,
      `to: "${to}" holds no replica of ${domain}; start one there first (sm.ctl.${to}.follow), or use shardmind migrate ${domain} --to ${to}, which does; ${unchanged}`,
    );
  }
  if (!CAN_TAKE_OVER.has(replica.state)) {
    const code = replica.state === 'needsUpgrade' ? ErrorCode.UPGRADE_REQUIRED : ErrorCode.UNAVAILABLE;
    throw new ShardmindError(code, `to: "${to}"'s replica of ${domain} is ${replica.state} and cannot take over; ${unchanged}`);
  }
  return to;
}

/** A host's `sm.ctl.<node>.status`, or undefined when it does not answer within `timeoutMs`. */
export async function askHostStatus(nc: NatsConnection, node: string, timeoutMs: number): Promise<HostStatusReply | undefined> {
  try {
    const msg = await nc.request(ctlSubject(node, 'status'), encodePayload({ v: 1 }, 'msgpack'), { timeout: timeoutMs });
    const reply = decodePayload(msg.data, 'msgpack');
    return isRecord(reply) && Array.isArray(reply['shards']) ? (reply as unknown as HostStatusReply) : undefined;
  } catch {
    return undefined;
  }
}

async function reply(msg: Msg, answer: (body: Record<string, unknown>) => unknown): Promise<void> {
  // Headers are read once, here: nats.js throws on every read of a header block it cannot decode.
  const read = readHeaders(msg);
  const encoding = read.ok ? encodingOf(read.headers) : 'msgpack';
  let body: unknown;
  try {
    if (!read.ok) throw read.error;
    const decoded = msg.data.length === 0 ? {} : decodePayload(msg.data, encoding);
    if (!isRecord(decoded)) throw badRequest('body', 'must be an object');
    body = await answer(decoded);
  } catch (e) {
    body = errorReply(e);
  }
  respond(msg, body, encoding);
}

function pruneOptionsOf(body: Record<string, unknown>): PruneOptions {
  const days = body['inactiveDays'];
  const below = body['decayedBelow'];
  if (days !== undefined && (typeof days !== 'number' || !Number.isFinite(days) || days < 0)) {
    throw badRequest('inactiveDays', 'must be a number of days ≥ 0');
  }
  // Below 1, as in the config: at 1 nearly every active fact would go, and there is no undo.
  if (below !== undefined && (typeof below !== 'number' || !(below > 0 && below < 1))) {
    throw badRequest('decayedBelow', 'must be a confidence in (0, 1)');
  }
  if (days === undefined && below === undefined) throw badRequest('inactiveDays', 'say what to prune: inactiveDays, decayedBelow, or both');
  return { ...(days !== undefined ? { inactiveDays: days } : {}), ...(below !== undefined ? { decayedBelow: below } : {}) };
}

function domainOf(body: Record<string, unknown>): string {
  const d = body['domain'];
  if (typeof d !== 'string' || d === '') throw badRequest('domain', 'must name a domain');
  return d;
}
