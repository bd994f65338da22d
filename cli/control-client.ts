/**
 * The operator's side of the control protocol (`sm.ctl.<node>.<op>`), shared by `status`, `migrate` and `apply`:
 * one request helper that turns error envelopes and silence into `ShardmindError`s, and the status shapes the CLI
 * reads. These are wire types, parsed leniently: a host of a slightly newer version may add fields.
 */
import type { NatsConnection } from 'nats';
import {
  ErrorCode,
  ShardmindError,
  ctlSubject,
  decodePayload,
  encodePayload,
  unwrapReply,
} from '../protocol/index.ts';

/** One shard actor as a host reports it in `sm.ctl.<node>.status`. */
export interface ShardStatusWire {
  readonly domain: string;
  readonly role: 'leader' | 'follower' | 'none';
  readonly state: string;
  readonly appliedSeq: number;
  readonly lag: number;
  readonly epoch: number;
  readonly streamLastSeq?: number;
  readonly leaderNode?: string;
  readonly lastHeartbeatAt?: string;
  readonly leaseUntil?: string;
  readonly leadingSince?: string;
  readonly lastError?: string;
  /** A follower's replica-read staleness bound (ms), when it has one. */
  readonly staleMs?: number;
  /** The log level the replica's build understands; absent from hosts that predate levels (they understand 1). */
  readonly logLevel?: number;
  /** Leader: the highest log level every replica understands (what it writes at most). */
  readonly writeLevel?: number;
  /** The store's read caches since it opened: being warmed between requests, or warm (absent from older hosts). */
  readonly warmUp?: 'warming' | 'warm';
}

export interface HostStatusWire {
  readonly v: 1;
  readonly node: string;
  readonly pid?: number;
  readonly startedAt?: string;
  readonly shards: readonly ShardStatusWire[];
  /** The digest of the config parts every host must agree on (`configDigest`); absent from older hosts. */
  readonly configDigest?: string;
  /** The host's wall clock against the other hosts' (actors/clock-peers.ts); absent from older hosts. */
  readonly clock?: { readonly offsetMs?: number; readonly peers: number; readonly off: boolean };
}

/** A node's status, or why it did not give one. */
export type NodeStatus =
  | { readonly node: string; readonly ok: true; readonly status: HostStatusWire; readonly ms: number }
  /** `noHost`: the NATS servers said at once that nothing listens on the node's control subject (no such host runs). */
  | { readonly node: string; readonly ok: false; readonly error: string; readonly noHost?: true };

/**
 * Sends one control request (msgpack) and returns the decoded reply; an error envelope is thrown as the
 * `ShardmindError` it names, and a node that does not answer in time as `UNAVAILABLE`.
 */
export async function ctlRequest<T>(
  nc: NatsConnection,
  node: string,
  op: string,
  body: Record<string, unknown>,
  timeoutMs = 2_000,
): Promise<T> {
  let data: Uint8Array;
  try {
    const msg = await nc.request(ctlSubject(node, op), encodePayload({ v: 1, ...body }, 'msgpack'), {
      timeout: timeoutMs,
    });
    data = msg.data;
  } catch (err) {
    const code = (err as { code?: string }).code;
    const why = code === '503' ? 'no host is listening' : `no answer within ${timeoutMs} ms`;
    throw new ShardmindError(ErrorCode.UNAVAILABLE, `${node}: ${op}: ${why}`, { cause: err });
  }
  return unwrapReply<T>(decodePayload(data, 'msgpack'));
}

/** Asks every node for its status at once; nodes that do not answer are reported, not thrown. */
export async function clusterStatus(nc: NatsConnection, nodes: readonly string[], timeoutMs = 1_500): Promise<NodeStatus[]> {
  return Promise.all(
    nodes.map(async (node): Promise<NodeStatus> => {
      const started = Date.now();
      try {
        const raw = await ctlRequest<Record<string, unknown>>(nc, node, 'status', {}, timeoutMs);
        return { node, ok: true, status: normalizeStatus(node, raw), ms: Date.now() - started };
      } catch (err) {
        const noHost = ((err as Error).cause as { code?: string } | undefined)?.code === '503';
        return { node, ok: false, error: (err as Error).message, ...(noHost ? { noHost: true as const } : {}) };
      }
    }),
  );
}

/** Accepts `shards` (what hosts send) or `actors` (the protocol note's first name for it). */
function normalizeStatus(node: string, raw: Record<string, unknown>): HostStatusWire {
  const list = (raw['shards'] ?? raw['actors'] ?? []) as ShardStatusWire[];
  return {
    v: 1,
    node: typeof raw['node'] === 'string' ? raw['node'] : node,
    ...(typeof raw['pid'] === 'number' ? { pid: raw['pid'] } : {}),
    ...(typeof raw['startedAt'] === 'string' ? { startedAt: raw['startedAt'] } : {}),
    shards: Array.isArray(list) ? list : [],
    ...(typeof raw['configDigest'] === 'string' ? { configDigest: raw['configDigest'] } : {}),
    ...(clockOf(raw['clock']) ?? {}),
  };
}

function clockOf(raw: unknown): { clock: NonNullable<HostStatusWire['clock']> } | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const c = raw as Record<string, unknown>;
  if (typeof c['peers'] !== 'number' || typeof c['off'] !== 'boolean') return undefined;
  return { clock: { peers: c['peers'], off: c['off'], ...(typeof c['offsetMs'] === 'number' ? { offsetMs: c['offsetMs'] } : {}) } };
}

/** Where a domain stands across the cluster: who leads (highest epoch wins a tie), who follows. */
export interface DomainView {
  readonly domain: string;
  readonly leader: string | undefined;
  readonly epoch: number;
  readonly followers: readonly string[];
  /** node → its actor's status. */
  readonly replicas: ReadonlyMap<string, ShardStatusWire>;
}

export function domainViews(statuses: readonly NodeStatus[]): Map<string, DomainView> {
  const byDomain = new Map<string, Map<string, ShardStatusWire>>();
  for (const s of statuses) {
    if (!s.ok) continue;
    for (const shard of s.status.shards) {
      let m = byDomain.get(shard.domain);
      if (!m) byDomain.set(shard.domain, (m = new Map()));
      m.set(s.node, shard);
    }
  }
  const out = new Map<string, DomainView>();
  for (const [domain, replicas] of byDomain) {
    let leader: string | undefined;
    let epoch = 0;
    for (const [node, st] of replicas) {
      if (st.role === 'leader' && (leader === undefined || st.epoch > epoch)) {
        leader = node;
        epoch = st.epoch;
      }
      epoch = Math.max(epoch, st.epoch);
    }
    const followers = [...replicas].filter(([n, st]) => n !== leader && st.state !== 'stopped').map(([n]) => n);
    out.set(domain, { domain, leader, epoch, followers, replicas });
  }
  return out;
}

/** The node `shardmind up` runs as (`UP_NODE` in cli/up.ts, not imported: that module starts a host). */
export const UP_NODE = 'local';

/**
 * Whether the servers answered but none of the nodes asked did: the node names are not the hosts' (most often
 * `shardmind up`, whose one node is `local`, asked with the config's mini-N names), or no host runs at all.
 */
export function noNodeAnswered(statuses: readonly NodeStatus[]): boolean {
  return statuses.length > 0 && statuses.every((s) => !s.ok);
}

/**
 * What to say when `noNodeAnswered`: which nodes were asked and, unless `local` was among them (or `nodesHint` is
 * off: `apply`, which takes no --nodes), the `--nodes local` a command against `shardmind up` needs
 * (walkthrough-session13 F2, F3).
 */
export function noNodeAnsweredMessage(statuses: readonly NodeStatus[], nodesHint = true): string {
  const nodes = statuses.map((s) => s.node);
  const why = statuses.every((s) => !s.ok && s.noHost === true)
    ? 'though the NATS servers did: no host of those names runs there'
    : 'within the time given (the NATS servers did answer)';
  const hint = nodes.includes(UP_NODE) || !nodesHint ? '' : `; against \`shardmind up\` (its one node is named ${UP_NODE}) pass --nodes ${UP_NODE}`;
  return `no node of ${nodes.join(', ')} answered, ${why}${hint}`;
}

/**
 * How long a leader is looked for while the servers say no host of the names asked listens at all: a host that is
 * starting subscribes within this, and a misnamed node (`--nodes` left out against `shardmind up`) is never coming.
 */
const NO_HOST_WAIT_MS = 3_000;

/**
 * The view of `domain` once a node leads it, asking every node's status until one does (a failover may be under
 * way); UNAVAILABLE after `waitMs`, or after 3 s when no host of `nodes` listens at all, naming the nodes asked.
 * What `migrate` starts from.
 */
export async function waitForLeaderView(nc: NatsConnection, nodes: readonly string[], domain: string, waitMs = 10_000): Promise<DomainView> {
  const started = Date.now();
  const deadline = started + waitMs;
  let everHeard = false;
  for (;;) {
    const statuses = await clusterStatus(nc, nodes, 1_000);
    const view = domainViews(statuses).get(domain);
    if (view?.leader) return view;
    everHeard ||= !statuses.every((s) => !s.ok && s.noHost === true);
    const now = Date.now();
    if (now > deadline || (!everHeard && now - started > NO_HOST_WAIT_MS)) {
      if (noNodeAnswered(statuses)) throw new ShardmindError(ErrorCode.UNAVAILABLE, `no node leads ${domain}: ${noNodeAnsweredMessage(statuses)}`);
      const silent = statuses.filter((s) => !s.ok).map((s) => s.node);
      const unheard = silent.length === 0 ? '' : `; ${silent.join(', ')} did not answer`;
      throw new ShardmindError(ErrorCode.UNAVAILABLE, `no node leads ${domain} (asked ${nodes.join(', ')}${unheard}); try again once it has a leader`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The node that leads `domain` now (`waitForLeaderView`): what `compact` and `prune` send their control op to. */
export async function waitForLeader(nc: NatsConnection, nodes: readonly string[], domain: string, waitMs = 10_000): Promise<string> {
  return (await waitForLeaderView(nc, nodes, domain, waitMs)).leader!;
}
