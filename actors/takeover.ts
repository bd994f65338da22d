/**
 * How a follower becomes a shard's leader, as one async function a shard machine can invoke (`fromPromise`):
 *
 * 1. claim the next epoch in KV (`kv.create`; someone else's key means they won the race: stay a follower);
 * 2. read the log's tail from the stream leader (stream info), never a replica's direct get;
 * 3. wait until this node's own follower tail has applied up to it (no second reader here);
 * 4. append `marker {kind:'epoch'}` with `Nats-Expected-Last-Sequence` = the tail: if it is fenced, somebody wrote
 *    after we looked (the old leader was alive after all): stay a follower;
 * 5. wait until the follower tail has applied the marker too, so the store's `appliedSeq` is the log's last
 *    sequence when the caller switches to leading.
 *
 * Used for failover (after the lease watcher fires) and for planned migration (after the target applies a handoff
 * marker naming it; then the old leader has stopped and step 4 cannot be fenced by it).
 */
import type { JetStreamClient, JetStreamManager } from 'nats';
import { ShardmindError, ErrorCode } from '../protocol/index.ts';
import type { Clock } from './clock.ts';
import type { EpochRegistry } from './epoch.ts';
import { logTail } from './log-stream.ts';
import { appendMarker, epochMarker } from './marker.ts';

export interface TakeoverOptions {
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly epochs: EpochRegistry;
  readonly domain: string;
  readonly node: string;
  readonly clock: Clock;
  /**
   * The highest epoch this node has seen lead (its store's leadership mark, heartbeats), or its last lost claim.
   * Candidates that saw the same leader die race for the same key, so `kv.create` picks one winner.
   */
  readonly knownEpoch: number;
  /** Resolves once this node's store has applied `seq`; rejects after `timeoutMs`. */
  readonly waitApplied: (seq: number, timeoutMs: number) => Promise<void>;
  /** How long catch-up to the tail may take before giving up the attempt. Default 10 s. */
  readonly catchUpTimeoutMs?: number;
}

export type TakeoverResult =
  | {
      readonly won: true;
      readonly epoch: number;
      /** The epoch marker's sequence: the log's last sequence, applied locally. */
      readonly seq: number;
      /** The tail it caught up to before appending. */
      readonly tail: number;
      /** Time from start to the marker applied, ms. */
      readonly tookMs: number;
    }
  | {
      readonly won: false;
      readonly epoch: number;
      readonly reason: 'epoch-taken' | 'fenced' | 'catch-up-timeout' | 'unavailable';
      readonly message: string;
    };

/** Runs the takeover sequence. Never throws for the expected outcomes; see `TakeoverResult.reason`. */
export async function takeOver(o: TakeoverOptions): Promise<TakeoverResult> {
  const started = o.clock.now();
  const catchUpMs = o.catchUpTimeoutMs ?? 10_000;
  let epoch = o.knownEpoch + 1;
  try {
    if (!(await o.epochs.claim(o.domain, epoch, o.node, o.clock.now()))) {
      return lost(epoch, 'epoch-taken', `${o.domain}: epoch ${epoch} was claimed by another node`);
    }
    const tail = await logTail(o.jsm, o.domain);
    try {
      await o.waitApplied(tail, catchUpMs);
    } catch (err) {
      return lost(epoch, 'catch-up-timeout', `${o.domain}: not caught up to ${tail} within ${catchUpMs} ms: ${String(err)}`);
    }
    let seq: number;
    try {
      seq = await appendMarker(o.js, o.domain, epochMarker(epoch, o.node, o.clock.now()), tail);
    } catch (err) {
      if (err instanceof ShardmindError && err.code === ErrorCode.NOT_LEADER) {
        return lost(epoch, 'fenced', err.message);
      }
      throw err;
    }
    await o.waitApplied(seq, catchUpMs);
    return { won: true, epoch, seq, tail, tookMs: o.clock.now() - started };
  } catch (err) {
    return lost(epoch, 'unavailable', `${o.domain}: takeover of epoch ${epoch} failed: ${String(err)}`);
  }
}

function lost(epoch: number, reason: Extract<TakeoverResult, { won: false }>['reason'], message: string): TakeoverResult {
  return { won: false, epoch, reason, message };
}
