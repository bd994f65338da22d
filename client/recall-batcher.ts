/**
 * Puts concurrent `recall` calls to the same place into one request (`recall_batch`), as `remember-batcher.ts` does
 * for remembers, and with no linger either: a call is never held back to wait for company. The place is a shard for
 * direct recalls (`sm.shard.<domain>.recall_batch`), the router for routed ones (`sm.mem.recall_batch`, which routes
 * and merges each item as `sm.mem.recall` would: router/recall-batch.ts).
 *
 * While fewer than `maxInFlight` requests to a shard are outstanding, the calls made in the current tick go out at
 * the end of it, at most `maxItems` to a request (one call alone goes as a plain `recall`, exactly the bytes it
 * always was). Calls made while that many are outstanding wait for one to come back. A request's place is given
 * back at the end of the event-loop turn its reply arrived in, not at once: its callers' next recalls (agents that
 * recall again as soon as they have an answer) are made in that turn, and then go together instead of the first of
 * them going alone. Several requests stay in flight so that the shard answers one while the client reads another.
 *
 * Each call gets its own result or error. An item refused for itself (a bad field) fails only its call; one refused
 * with a retryable error (a `minSeq` wait that ran out) is sent again alone, with the retries a lone recall gets.
 * A failure of the whole request (NOT_LEADER while a shard moves, a timeout) is retried whole within the earliest
 * deadline of its calls, as the client retries any read. A reply too big for the server (TOO_LARGE) is asked for
 * again in halves, down to single recalls, which get what a lone recall gets. A host from before `recall_batch`
 * answers "unknown op": its calls then go alone for RETRY_RECALL_BATCH_OP_MS before the op is tried again.
 *
 * A call's deadline runs from the call: one still queued at its deadline fails with TIMEOUT, unsent.
 */
import { ErrorCode, LIMITS, ShardmindError, isErrorReply, isRecord, type RecallBatchReply } from '../protocol/index.ts';
import type { AnyRecallReply } from './recall-reply.ts';

/** What the batcher sends through: the client's retrying request, giving up at `deadline` (epoch ms). */
export type RecallRequest = <T>(subject: string, body: object, deadline: number) => Promise<T>;

/**
 * Where recalls go: a shard's plain `recall` subject and its `recall_batch` subject, or the router's (`sm.mem.recall`
 * and `sm.mem.recall_batch`, each item routed as a lone recall would be). `name` says which, in errors.
 */
export interface RecallTarget {
  readonly name: string;
  readonly single: string;
  readonly batch: string;
}

/**
 * Requests to one shard outstanding before further calls wait, and recalls in one request. Two of 32: 64 recalls in
 * flight go as two messages, so that while the shard reads one batch the client turns the other's reply into facts.
 * Measured at ×64, 10k facts (decisions §67): two of 32 took the load generator 10–12 µs per recall against 18–21
 * for four of 16 (§56's prototype shape) and 26–27 for eight of 8, the host 24–26 against 27–29, nats-server 5–6
 * against 8–9; one request of 64 swung between the two.
 */
export const RECALL_BATCH_IN_FLIGHT = 2;
export const RECALL_BATCH_ITEMS = 32;
/** A batch's estimated size stays under this: the hosts' default payload limit is 64 KiB. */
export const MAX_RECALL_BATCH_BYTES = 48 * 1024;
/** After a shard (or router) answered "unknown op" for `recall_batch`, how long its calls go alone before the op is tried again. */
export const RETRY_RECALL_BATCH_OP_MS = 60_000;

interface Waiting {
  readonly body: object;
  readonly bytes: number;
  /** Epoch ms: past it the call fails rather than wait or be sent. */
  readonly deadline: number;
  readonly resolve: (r: AnyRecallReply) => void;
  readonly reject: (e: unknown) => void;
}

interface ShardQueue {
  readonly target: RecallTarget;
  waiting: Waiting[];
  inFlight: number;
  flushScheduled: boolean;
}

export class RecallBatcher {
  private readonly queues = new Map<string, ShardQueue>();
  /** `recall_batch` subjects whose host answered "unknown op", until when (ms). */
  private readonly unsupported = new Map<string, number>();
  /** A smaller byte budget for a shard whose hosts refused a batch as too large (their payload limit is lower). */
  private readonly budgets = new Map<string, number>();
  /**
   * The batches on their way, so `abandon` can reach their callers: one entry per request, not per call (the
   * client's per-call bookkeeping, `track`, is what this replaces for batched recalls).
   */
  private readonly sending = new Set<readonly Waiting[]>();
  /** Callers of `whenIdle`, woken when nothing is queued or on its way. */
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly request: RecallRequest,
    private readonly maxInFlight = RECALL_BATCH_IN_FLIGHT,
    private readonly maxItems = RECALL_BATCH_ITEMS,
  ) {
    if (maxItems < 1 || maxItems > LIMITS.recallBatchItems) throw new RangeError(`maxItems: 1..${LIMITS.recallBatchItems}, got ${maxItems}`);
  }

  /** Sends `body` (a recall request) with the calls to the same shard; it fails (TIMEOUT, not sent) if still queued at `deadline`. */
  recall(target: RecallTarget, body: object, deadline: number): Promise<AnyRecallReply> {
    let q = this.queues.get(target.batch);
    if (q === undefined) {
      q = { target, waiting: [], inFlight: 0, flushScheduled: false };
      this.queues.set(target.batch, q);
    }
    const queue = q;
    return new Promise<AnyRecallReply>((resolve, reject) => {
      queue.waiting.push({ body, bytes: estimateBytes(body), deadline, resolve, reject });
      if (queue.inFlight < this.maxInFlight) this.scheduleFlush(queue);
    });
  }

  /** At the end of this tick, so calls made together go together. */
  private scheduleFlush(q: ShardQueue): void {
    if (q.flushScheduled) return;
    q.flushScheduled = true;
    queueMicrotask(() => this.flush(q));
  }

  private flush(q: ShardQueue): void {
    q.flushScheduled = false;
    while (q.waiting.length > 0 && q.inFlight < this.maxInFlight) {
      const batch = this.take(q);
      if (batch.length > 0) this.send(q, batch);
    }
    if (q.waiting.length === 0 && q.inFlight === 0) this.retire(q);
  }

  /** Forgets a shard with nothing queued or on its way; wakes `whenIdle` callers when it was the last. */
  private retire(q: ShardQueue): void {
    this.queues.delete(q.target.batch);
    if (this.queues.size === 0 && this.idleWaiters.length > 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /** Resolves when every call made so far has been answered (nothing queued or on its way). */
  whenIdle(): Promise<void> {
    if (this.queues.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Fails every call not answered yet with `errorFor()`: queued ones are dropped unsent; a request on its way still
   * arrives, but its answer no longer reaches its callers. For the client's `close()` at its bound.
   */
  abandon(errorFor: () => unknown): void {
    for (const batch of this.sending) for (const w of batch) w.reject(errorFor());
    for (const q of this.queues.values()) for (const w of q.waiting.splice(0)) w.reject(errorFor());
  }

  /** The next batch, in call order, within the item and byte budgets; calls past their deadline fail here, unsent. */
  private take(q: ShardQueue): Waiting[] {
    this.expire(q, Date.now());
    const budget = this.budgets.get(q.target.batch) ?? MAX_RECALL_BATCH_BYTES;
    let n = 0;
    let bytes = 0;
    while (n < q.waiting.length && n < this.maxItems) {
      const next = q.waiting[n]!.bytes;
      if (n > 0 && bytes + next > budget) break;
      bytes += next;
      n++;
    }
    return q.waiting.splice(0, n);
  }

  /** Fails the waiting calls whose deadline has passed: TIMEOUT, retryable (nothing was sent). */
  private expire(q: ShardQueue, now: number): void {
    if (!q.waiting.some((w) => w.deadline <= now)) return;
    q.waiting = q.waiting.filter((w) => {
      if (w.deadline > now) return true;
      w.reject(
        new ShardmindError(
          ErrorCode.TIMEOUT,
          `recall: the deadline passed while it waited to be sent to ${q.target.name} (the requests ahead of it were slow or failing); not sent`,
        ),
      );
      return false;
    });
  }

  private send(q: ShardQueue, batch: Waiting[]): void {
    q.inFlight++;
    this.sending.add(batch);
    const alone = batch.length === 1 || (this.unsupported.get(q.target.batch) ?? 0) > Date.now();
    const sent = alone ? this.sendEach(q.target, batch) : this.sendBatch(q.target, batch);
    sent
      // Whatever went wrong, nobody is left waiting: a caller not answered by now gets the error (a settled
      // promise ignores a second answer).
      .catch((err: unknown) => {
        const e = err instanceof ShardmindError ? err : new ShardmindError(ErrorCode.INTERNAL, `recall_batch: ${(err as Error)?.message}`, { cause: err });
        for (const w of batch) w.reject(e);
      })
      // The place is given back at the end of this turn, once the callers answered in it have made their next calls.
      .finally(() => {
        this.sending.delete(batch);
        setImmediate(() => this.release(q));
      });
  }

  private release(q: ShardQueue): void {
    q.inFlight--;
    if (q.waiting.length > 0) this.flush(q);
    else if (q.inFlight === 0) this.retire(q);
  }

  private async sendBatch(target: RecallTarget, batch: readonly Waiting[]): Promise<void> {
    let reply: RecallBatchReply;
    try {
      reply = await this.request<RecallBatchReply>(target.batch, { v: 1, recalls: batch.map((w) => w.body) }, earliestDeadline(batch));
    } catch (err) {
      if (isUnknownBatchOp(err)) {
        this.unsupported.set(target.batch, Date.now() + RETRY_RECALL_BATCH_OP_MS);
        return this.sendEach(target, batch);
      }
      if (err instanceof ShardmindError && err.code === ErrorCode.TOO_LARGE && batch.length > 1) {
        // The request was over the hosts' payload limit (remember it), or the reply over the server's max_payload:
        // ask again in halves.
        const limit = /the limit is (\d+) bytes/.exec(err.message);
        if (limit) this.budgets.set(target.batch, Math.max(1024, Math.floor(Number(limit[1]) * 0.75)));
        const half = Math.ceil(batch.length / 2);
        await Promise.all([batch.slice(0, half), batch.slice(half)].map((part) => (part.length === 1 ? this.sendEach(target, part) : this.sendBatch(target, part))));
        return;
      }
      for (const w of batch) w.reject(err);
      return;
    }
    const results: readonly unknown[] = Array.isArray(reply?.results) ? reply.results : [];
    let again: Waiting[] | undefined;
    for (let i = 0; i < batch.length; i++) {
      const w = batch[i]!;
      const slot = results[i];
      if (isErrorReply(slot)) {
        const e = ShardmindError.fromWire({ code: slot.error.code as ErrorCode, message: String(slot.error.message), retryable: Boolean(slot.error.retryable) });
        // A retryable refusal of this item alone (its minSeq wait ran out): retried as a lone recall would be.
        if (e.retryable) (again ??= []).push(w);
        else w.reject(e);
      } else if (isRecord(slot) && slot['v'] === 1 && (Array.isArray(slot['rows']) || Array.isArray(slot['facts']))) {
        w.resolve(slot as unknown as AnyRecallReply);
      } else {
        w.reject(new ShardmindError(ErrorCode.INTERNAL, `recall_batch answered ${results.length} results for ${batch.length} recalls, or a result that is not a recall reply`));
      }
    }
    if (again !== undefined) await this.sendEach(target, again);
  }

  /** Each call as its own `recall`, all at once. */
  private async sendEach(target: RecallTarget, batch: readonly Waiting[]): Promise<void> {
    await Promise.all(batch.map((w) => this.request<AnyRecallReply>(target.single, w.body, w.deadline).then(w.resolve, w.reject)));
  }
}

function earliestDeadline(batch: readonly Waiting[]): number {
  let earliest = Infinity;
  for (const w of batch) if (w.deadline < earliest) earliest = w.deadline;
  return earliest;
}

/**
 * An upper bound of a recall body's msgpack size without encoding it: each string at 3 bytes per UTF-16 unit
 * (UTF-8's worst) plus its key, other values (numbers, booleans, a `minSeq` map, a domain list) at a fixed allowance.
 */
function estimateBytes(body: object): number {
  const fields = body as Record<string, unknown>;
  let bytes = 16;
  // `for…in`, not `Object.entries`: this runs for every call.
  for (const key in fields) {
    const value = fields[key];
    bytes += key.length + 3 + (typeof value === 'string' ? value.length * 3 + 5 : typeof value === 'object' && value !== null ? 128 : 9);
  }
  return bytes;
}

function isUnknownBatchOp(err: unknown): boolean {
  return err instanceof ShardmindError && err.code === ErrorCode.BAD_REQUEST && /unknown (op|operation)\b.*recall_batch/.test(err.message);
}
