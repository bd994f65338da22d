/**
 * Leadership markers in a shard's log: `epoch` (a leader starts serving) and `handoff` (a leader passes the shard
 * to `to`). Both are appended with `Nats-Expected-Last-Sequence`, so a marker lands only if its writer had seen the
 * whole log — the same fence that guards every write. Every replica applies markers in log order, so every replica
 * agrees on who led at which sequence.
 */
import type { JetStreamClient } from 'nats';
import { ErrorCode, logSubject, ShardmindError } from '../protocol/index.ts';
import type { LogEntry, MarkerEntry } from '../shards/index.ts';
import { encodeEntry } from './log-codec.ts';
import { apiErrorCode, WRONG_LAST_SEQUENCE } from './log-stream.ts';

/** Who writes markers, in `source.agent`. */
export const MARKER_AGENT = 'shardmind';

/** The entry a new leader appends before it serves. */
export function epochMarker(epoch: number, node: string, now: number): MarkerEntry {
  return {
    v: 1,
    op: 'marker',
    kind: 'epoch',
    epoch,
    node,
    opId: `marker.epoch.${epoch}.${node}`,
    recordedAt: now,
    source: { agent: MARKER_AGENT, node },
  };
}

/** The entry a leader appends when it hands the shard to `to` (planned migration). */
export function handoffMarker(epoch: number, node: string, to: string, now: number): MarkerEntry {
  return {
    v: 1,
    op: 'marker',
    kind: 'handoff',
    epoch,
    node,
    to,
    opId: `marker.handoff.${epoch}.${node}.${to}`,
    recordedAt: now,
    source: { agent: MARKER_AGENT, node },
  };
}

/**
 * Appends a marker only if the log ends at `expectedLastSeq`; resolves to the marker's sequence. Another writer
 * having appended in between (JetStream 10071) throws `NOT_LEADER`: the caller is not, or no longer, the leader.
 */
export async function appendMarker(
  js: JetStreamClient,
  domain: string,
  entry: MarkerEntry,
  expectedLastSeq: number,
  timeoutMs = 5_000,
): Promise<number> {
  try {
    const ack = await js.publish(logSubject(domain), encodeEntry(entry), {
      msgID: entry.opId,
      expect: { lastSequence: expectedLastSeq },
      timeout: timeoutMs,
    });
    return ack.seq;
  } catch (err) {
    if (apiErrorCode(err) === WRONG_LAST_SEQUENCE) {
      throw new ShardmindError(
        ErrorCode.NOT_LEADER,
        `${domain}: ${entry.kind} marker of epoch ${entry.epoch} fenced: the log moved past ${expectedLastSeq}`,
        { cause: err },
      );
    }
    throw new ShardmindError(ErrorCode.UNAVAILABLE, `${domain}: marker append failed: ${String(err)}`, { cause: err });
  }
}

/** A handoff marker naming `node` as the next leader: on applying it, that node takes over without a lease wait. */
export function isHandoffTo(entry: LogEntry | undefined, node: string): entry is MarkerEntry {
  return entry?.op === 'marker' && entry.kind === 'handoff' && entry.to === node;
}

/** Any leadership marker (its epoch is the highest a follower knows after applying it). */
export function isMarker(entry: LogEntry | undefined): entry is MarkerEntry {
  return entry?.op === 'marker';
}
