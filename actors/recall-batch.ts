/**
 * A leader's answer to `recall_batch` (`sm.shard.<domain>.recall_batch`): several recalls in one message, each
 * answered as a lone `recall` of it would be, in one reply. What a NATS message costs — nats.js's parse and publish
 * on both ends, nats-server's routing, the client's inbox and decode setup — is paid once per batch instead of once
 * per recall (decisions §56, §67).
 *
 * Each item keeps its own behaviour: its layout and columns, its `minSeq` wait (an item whose wait runs out has its
 * TIMEOUT in its slot; the others are answered), its own error for a bad field. What concerns the shard as a whole
 * fails the request, as it fails a lone recall: the lease check (NOT_LEADER once it lapses), and a store that cannot
 * read (INTERNAL). In msgpack each item's reply is written by the same writers as a lone recall's and the batch's
 * reply is those bytes side by side (`packRecallBatchReply`); in JSON the items are bodies in one object.
 */
import {
  ErrorCode,
  ShardmindError,
  encodePayload,
  errorReply,
  packRecallBatchReply,
  type Encoding,
  type RecallBatchItem,
  type RecallBatchReply,
} from '../protocol/index.ts';
import { RecallAnswer, runRead, type ReadContext, type Served } from './shard-reads.ts';

export interface RecallBatchContext extends ReadContext {
  readonly minSeqWaitMs: number;
  /** Resolves once this replica has applied `seq`, or rejects with TIMEOUT. */
  waitForSeq(seq: number, timeoutMs: number): Promise<void>;
  /** Undefined when the leader may answer reads now; else a promise that resolves once it may, or rejects. */
  readGate?(): Promise<void> | undefined;
}

/** One slot of the reply: the item's recall, or the error that refused it. */
type Slot = RecallAnswer | ShardmindError;

/**
 * The reply (msgpack bytes, or a body for JSON), or a promise of it when the lease or an item's `minSeq` has to be
 * waited for. Throws (or rejects) only for what fails the whole request.
 */
export function answerRecallBatch(items: readonly (RecallBatchItem | ShardmindError)[], encoding: Encoding, o: RecallBatchContext, served: Served): unknown {
  const gate = o.readGate?.();
  if (gate === undefined) return readAll(items, encoding, o, served);
  return gate.then(() => readAll(items, encoding, o, served));
}

function readAll(items: readonly (RecallBatchItem | ShardmindError)[], encoding: Encoding, o: RecallBatchContext, served: Served): unknown {
  const n = items.length;
  const slots: Slot[] = new Array(n);
  let waits: Promise<void>[] | undefined;
  for (let i = 0; i < n; i++) {
    const item = items[i]!;
    if (item instanceof ShardmindError) {
      slots[i] = item;
      continue;
    }
    const seq = item.req.minSeq?.[o.domain];
    if (seq === undefined || seq <= o.position()) {
      slots[i] = read(item, o, served);
      continue;
    }
    // Read-your-writes, per item, bounded as for a lone recall. A store failure while reading (thrown inside the
    // first callback) is not caught by the second: it fails the whole request, as it would a lone recall.
    const waited = o.waitForSeq(seq, o.minSeqWaitMs).then(
      () => void (slots[i] = read(item, o, served)),
      (err: unknown) => {
        if (!(err instanceof ShardmindError) || err.code === ErrorCode.INTERNAL) throw err;
        slots[i] = err;
      },
    );
    (waits ??= []).push(waited);
  }
  if (waits === undefined) return reply(slots, encoding);
  return Promise.all(waits).then(() => reply(slots, encoding));
}

function read(item: RecallBatchItem, o: RecallBatchContext, served: Served): RecallAnswer {
  return runRead({ op: 'recall', req: item.req, layout: item.layout, withColumns: item.withColumns }, o, served) as RecallAnswer;
}

function reply(slots: readonly Slot[], encoding: Encoding): Uint8Array | RecallBatchReply {
  if (encoding === 'json') {
    return { v: 1, results: slots.map((s) => (s instanceof RecallAnswer ? s.body() : errorReply(s))) };
  }
  const parts: Uint8Array[] = new Array(slots.length);
  for (let i = 0; i < slots.length; i++) {
    const s = slots[i]!;
    parts[i] = s instanceof RecallAnswer ? s.packed() : encodePayload(errorReply(s), 'msgpack');
  }
  return packRecallBatchReply(parts);
}
