/**
 * A host that is stopping (SIGTERM: a restart, an upgrade) first hands each shard it leads to a caught-up standby,
 * with the hand-off a planned migration uses: the leader finishes in-flight writes, appends a hand-off marker
 * naming the standby and follows; the standby, applying the marker, claims the next epoch and serves. Agents see a
 * gap of tens of milliseconds instead of a lease running out and an election (seconds).
 *
 * Best effort and bounded: a shard with no standby ready (not following, too far behind, or itself stopping), or
 * a hand-off that does not finish in time, is simply stopped, and its standby takes over when the lease lapses, as
 * it did before this existed.
 */
import type { NatsConnection } from 'nats';
import { askHostStatus } from './control.ts';

/** A shard this host leads, as the drain sees it. */
export interface LeadingShard {
  readonly domain: string;
  /** This leader's applied sequence (ShardActor.status().appliedSeq). */
  status(): { readonly appliedSeq: number };
  /** The planned hand-off (ShardActor.handOffTo): resolves once the marker is applied here. */
  handOffTo(to: string): Promise<unknown>;
}

export interface DrainHandOffOptions {
  readonly nc: NatsConnection;
  readonly node: string;
  readonly leading: readonly LeadingShard[];
  /** Nodes that may take `domain`, best first (its placement standbys, then the rest). */
  candidates(domain: string): readonly string[];
  /** A standby more than this many entries behind is not chosen (it would keep the shard dark while it catches up). */
  readonly maxLag?: number;
  /** The whole hand-off, every shard in parallel; after it the host stops regardless. */
  readonly timeoutMs?: number;
  readonly log: (line: string) => void;
  /**
   * Why the shards move, for the log. Absent: the host is stopping, and a shard it cannot hand off goes dark until
   * a standby's lease runs out. Present (e.g. "clock off"): the host keeps serving a shard it cannot hand off.
   */
  readonly why?: string;
}

const DEFAULT_MAX_LAG = 256;
const DEFAULT_TIMEOUT_MS = 4_000;
const STATUS_TIMEOUT_MS = 500;

/** Hands every leading shard to a ready standby; resolves (never rejects) once each has moved or been given up. */
export async function handOffBeforeStopping(o: DrainHandOffOptions): Promise<void> {
  const deadline = Date.now() + (o.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  await Promise.all(o.leading.map((shard) => handOffOne(o, shard, deadline)));
}

async function handOffOne(o: DrainHandOffOptions, shard: LeadingShard, deadline: number): Promise<void> {
  const maxLag = o.maxLag ?? DEFAULT_MAX_LAG;
  const why = o.why ?? 'stopping';
  const stays = `${shard.domain} stays here for now`;
  let to: string | undefined;
  const others = o.candidates(shard.domain).filter((node) => node !== o.node);
  if (others.length === 0) {
    // `shardmind up`, or a domain placed on this Mini alone: nobody could take it, so do not suggest someone will.
    o.log(`[${o.node}] ${why}: ${o.why ? `${stays}: no other node is placed to take it` : `${shard.domain} has no standby placed; it is unavailable until a host leading it starts`}`);
    return;
  }
  for (const node of others) {
    const host = await askHostStatus(o.nc, node, STATUS_TIMEOUT_MS);
    const s = host?.draining ? undefined : host?.shards.find((x) => x.domain === shard.domain);
    if (s?.state === 'following' && shard.status().appliedSeq - s.appliedSeq <= maxLag) {
      to = node;
      break;
    }
  }
  if (to === undefined) {
    o.log(`[${o.node}] ${why}: no standby ready to take ${shard.domain}; ${o.why ? stays : 'it takes over when the lease lapses'}`);
    return;
  }
  const started = Date.now();
  try {
    await withDeadline(shard.handOffTo(to), deadline, `the hand-off of ${shard.domain} to ${to}`);
    // The marker is applied here; stay (and keep refusing with SHARD_MOVED) until the standby serves, so agents
    // are told to retry rather than left without an answer.
    for (;;) {
      const host = await askHostStatus(o.nc, to, STATUS_TIMEOUT_MS);
      if (host?.shards.find((x) => x.domain === shard.domain)?.state === 'leading') break;
      // The whole cluster may be stopping at once: a standby that began stopping too will not serve; do not wait.
      if (host?.draining) throw new Error(`${to} is stopping too`);
      if (Date.now() > deadline) throw new Error(`${to} did not start leading ${shard.domain} in time`);
      await new Promise((r) => setTimeout(r, 20));
    }
    o.log(`[${o.node}] ${why}: handed ${shard.domain} to ${to} in ${Date.now() - started} ms`);
  } catch (err) {
    o.log(`[${o.node}] ${why}: hand-off of ${shard.domain} to ${to} not finished (${(err as Error).message}); ${o.why ? 'tried again later' : 'stopping anyway'}`);
  }
}

function withDeadline<T>(work: Promise<T>, deadline: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} took too long`)), Math.max(0, deadline - Date.now()));
    work.then(
      (v) => (clearTimeout(timer), resolve(v)),
      (e: unknown) => (clearTimeout(timer), reject(e)),
    );
  });
}
