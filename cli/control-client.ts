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
  | { readonly node: string; readonly ok: false; readonly error: string };

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
        return { node, ok: false, error: (err as Error).message };
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

/**
 * The node that leads `domain` now, asking every node's status until one does (a failover may be under way);
 * UNAVAILABLE after `waitMs`. What `compact` and `prune` send their control op to.
 */
export async function waitForLeader(nc: NatsConnection, nodes: readonly string[], domain: string, waitMs = 10_000): Promise<string> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const leader = domainViews(await clusterStatus(nc, nodes, 1_000)).get(domain)?.leader;
    if (leader) return leader;
    if (Date.now() > deadline) {
      throw new ShardmindError(ErrorCode.UNAVAILABLE, `no node leads ${domain} (asked ${nodes.join(', ')}); try again once it has a leader`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
