/**
 * Puts concurrent `remember` calls bound for the same place (one shard, or the router with the same `domain`) into
 * one request (`remember_batch`), the way a Pub/Sub or Kafka producer batches publishes — but with no linger: a
 * call is never held back to wait for company.
 *
 * While fewer than `maxInFlight` requests to that place are outstanding, what was called in the current tick goes
 * out at the end of it (one call alone goes as a plain `remember`, exactly the bytes it always was). Calls made
 * while that many are outstanding wait for one to come back and then go together. An agent process with many
 * tasks writing at once sends a few requests instead of one per fact; the shard then puts them in one log message
 * (its own group commit), so one JetStream append, one fsync and one reply cover them all.
 *
 * Each call keeps its own opId and gets its own result or error: a bad fact fails only itself. A failure of the
 * whole request (the shard is moving, a timeout) is retried by the client with the same opIds, so what already
 * landed answers as a duplicate and nothing is applied twice. A host from before `remember_batch` answers "unknown
 * op": the batcher then sends each call to that place alone for RETRY_BATCH_OP_MS, and tries the op again after.
 *
 * A call's deadline (the client's `deadlineMs`) runs from the call, not from when its batch is sent: a call still
 * queued at its deadline fails with TIMEOUT without being sent, and a batch's request gives up at its earliest
 * item's deadline. The calls waiting for one place hold at most `maxQueuedBytes` of facts (estimated; default
 * DEFAULT_MAX_QUEUED_BYTES); past that a call fails at once with a retryable UNAVAILABLE, not sent, so an agent
 * that keeps writing through an outage learns it at once instead of piling up memory (Kafka's producer bounds its
 * `buffer.memory` the same way). `whenRoom` lets `rememberMany`, which owns its loop, wait for room instead.
 */
import { defined } from './convert.ts';
import { ErrorCode, LIMITS, ShardmindError, isRecord, type RememberBatchItem, type RememberBatchReply, type RememberReply } from '../protocol/index.ts';

/** What the batcher sends through: the client's retrying request, giving up at `deadline` (epoch ms). */
export type BatchRequest = <T>(subject: string, body: object, deadline: number) => Promise<T>;

/** Where a call goes: a shard (`sm.shard.<domain>.*`) or the router (`sm.mem.*`, with or without a domain). */
export interface BatchTarget {
  /** Calls with the same key may share a request. */
  readonly key: string;
  /** The subject of a plain `remember`. */
  readonly single: string;
  /** The subject of `remember_batch`. */
  readonly batch: string;
  readonly domain?: string;
}

/**
 * Requests to one place outstanding before further calls wait to go together. Two rather than one: while one batch
 * waits for its commit, the next can be parsed and appended (measured 1 / 2 / 4 alike within this box's noise).
 */
export const BATCH_IN_FLIGHT = 2;
/** A batch's estimated size stays under this: the hosts' default payload limit is 64 KiB. */
export const MAX_BATCH_BYTES = 48 * 1024;
/** After a place answered "unknown op" for `remember_batch`, how long its calls go alone before the op is tried again. */
export const RETRY_BATCH_OP_MS = 60_000;
/**
 * Estimated bytes of facts one place may hold waiting to be sent: 32 MiB (Kafka's producer `buffer.memory`), about
 * 680 full batches — a burst a healthy shard takes in a few seconds, and a bound on memory while one is down.
 */
export const DEFAULT_MAX_QUEUED_BYTES = 32 * 1024 * 1024;

interface Waiting {
  readonly item: RememberBatchItem;
  readonly bytes: number;
  /** Epoch ms: past it the call fails rather than wait or be sent. */
  readonly deadline: number;
  readonly resolve: (r: RememberReply) => void;
  readonly reject: (e: unknown) => void;
}

interface PlaceQueue {
  readonly target: BatchTarget;
  waiting: Waiting[];
  /** The estimated bytes of `waiting`. */
  queuedBytes: number;
  inFlight: number;
  flushScheduled: boolean;
  /** Callers of `whenRoom`, woken when the queue shrinks. */
  roomWaiters: (() => void)[];
}

export class RememberBatcher {
  private readonly queues = new Map<string, PlaceQueue>();
  /**
   * Subjects whose server answered that it does not know `remember_batch`, until when (ms): calls to them go alone
   * meanwhile, and the op is tried again after that (a rolling upgrade reaches them).
   */
  private readonly unsupported = new Map<string, number>();
  /** A smaller byte budget for a place whose hosts refused a batch as too large (their `maxPayloadBytes` is lower). */
  private readonly budgets = new Map<string, number>();
  /**
   * The batches on their way, so `abandon` can reach their callers: one entry per request, not per call (the
   * client's per-call bookkeeping cost a remember ~1 µs of CPU, mostly its garbage).
   */
  private readonly sending = new Set<readonly Waiting[]>();
  /** Callers of `whenIdle`, woken when nothing is queued or on its way. */
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly request: BatchRequest,
    private readonly sender: { readonly agent: string; readonly node: string | undefined },
    private readonly maxInFlight = BATCH_IN_FLIGHT,
    private readonly maxQueuedBytes = DEFAULT_MAX_QUEUED_BYTES,
  ) {}

  /** Sends `item` with the calls to the same place; it fails (TIMEOUT, not sent) if still queued at `deadline`. */
  remember(target: BatchTarget, item: RememberBatchItem, deadline = Infinity): Promise<RememberReply> {
    let q = this.queues.get(target.key);
    if (q === undefined) {
      q = { target, waiting: [], queuedBytes: 0, inFlight: 0, flushScheduled: false, roomWaiters: [] };
      this.queues.set(target.key, q);
    }
    const bytes = estimateBytes(item);
    if (!this.fits(q, bytes)) {
      return Promise.reject(
        new ShardmindError(
          ErrorCode.UNAVAILABLE,
          `remember: ${q.waiting.length} writes (${q.queuedBytes} bytes, the client's limit is ${this.maxQueuedBytes}) already wait to be sent to ${describe(target)}, which is slow or unreachable; this one was not sent (opId ${item.opId}): retry it later`,
        ),
      );
    }
    const queue = q;
    queue.queuedBytes += bytes;
    return new Promise<RememberReply>((resolve, reject) => {
      queue.waiting.push({ item, bytes, deadline, resolve, reject });
      if (queue.inFlight < this.maxInFlight) this.scheduleFlush(queue);
    });
  }

  /** Whether a call of `bytes` may join the queue: always when it is empty (a lone call is never refused). */
  private fits(q: PlaceQueue, bytes: number): boolean {
    return q.waiting.length === 0 || q.queuedBytes + bytes <= this.maxQueuedBytes;
  }

  /** Undefined when `item` to `target` would be queued now; else a promise that resolves when there may be room. */
  whenRoom(target: BatchTarget, item: RememberBatchItem): Promise<void> | undefined {
    const q = this.queues.get(target.key);
    if (q === undefined || this.fits(q, estimateBytes(item))) return undefined;
    return new Promise<void>((resolve) => q.roomWaiters.push(resolve));
  }

  /** At the end of this tick, so calls made together go together. */
  private scheduleFlush(q: PlaceQueue): void {
    if (q.flushScheduled) return;
    q.flushScheduled = true;
    queueMicrotask(() => {
      q.flushScheduled = false;
      while (q.waiting.length > 0 && q.inFlight < this.maxInFlight) {
        const batch = this.take(q);
        if (batch.length > 0) this.send(q, batch);
      }
      if (q.waiting.length === 0 && q.inFlight === 0) this.retire(q);
    });
  }

  /**
   * The next batch: in call order, at most LIMITS.batchItems items and the byte budget (at least one item; none when
   * every waiting call is past its deadline). Calls past their deadline fail here, unsent.
   */
  private take(q: PlaceQueue): Waiting[] {
    this.expire(q, Date.now());
    const budget = this.budgets.get(q.target.batch) ?? MAX_BATCH_BYTES;
    let n = 0;
    let bytes = 0;
    while (n < q.waiting.length && n < LIMITS.batchItems) {
      const next = q.waiting[n]!.bytes;
      if (n > 0 && bytes + next > budget) break;
      bytes += next;
      n++;
    }
    const batch = q.waiting.splice(0, n);
    q.queuedBytes -= bytes;
    if (q.roomWaiters.length > 0) for (const wake of q.roomWaiters.splice(0)) wake();
    return batch;
  }

  /** Fails the waiting calls whose deadline has passed: TIMEOUT, retryable (nothing was sent, so a retry is safe). */
  private expire(q: PlaceQueue, now: number): void {
    // Deadlines grow in call order (one deadlineMs per client), so the oldest call says whether any expired.
    if (q.waiting.length === 0 || q.waiting[0]!.deadline > now) return;
    q.waiting = q.waiting.filter((w) => {
      if (w.deadline > now) return true;
      q.queuedBytes -= w.bytes;
      w.reject(
        new ShardmindError(
          ErrorCode.TIMEOUT,
          `remember: the deadline passed while it waited to be sent to ${describe(q.target)} (the requests ahead of it were slow or failing); not sent, so retrying it is safe (opId ${w.item.opId})`,
        ),
      );
      return false;
    });
  }

  private send(q: PlaceQueue, batch: Waiting[]): void {
    q.inFlight++;
    this.sending.add(batch);
    const alone = batch.length === 1 || (this.unsupported.get(q.target.batch) ?? 0) > Date.now();
    const sent = alone ? this.sendEach(q.target, batch) : this.sendBatch(q.target, batch);
    void sent
      // Whatever went wrong, nobody is left waiting: a caller not answered by now gets the error.
      .catch((err: unknown) => {
        const e = err instanceof ShardmindError ? err : new ShardmindError(ErrorCode.INTERNAL, `remember_batch: ${(err as Error).message}`, { cause: err });
        for (const w of batch) w.reject(e);
      })
      .finally(() => {
        this.sending.delete(batch);
        q.inFlight--;
        if (q.waiting.length > 0) this.scheduleFlush(q);
        else if (q.inFlight === 0) this.retire(q);
      });
  }

  /** Forgets a place with nothing queued or on its way; wakes `whenIdle` callers when it was the last. */
  private retire(q: PlaceQueue): void {
    this.queues.delete(q.target.key);
    if (this.queues.size === 0 && this.idleWaiters.length > 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /** Resolves when every call made so far has been answered (nothing queued or on its way). */
  whenIdle(): Promise<void> {
    if (this.queues.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Fails every call not answered yet with `errorFor(its item)`: queued ones are dropped unsent; a batch on its way
   * still arrives, but its answer no longer reaches its callers. For the client's `close()` at its bound.
   */
  abandon(errorFor: (item: RememberBatchItem) => unknown): void {
    for (const batch of this.sending) for (const w of batch) w.reject(errorFor(w.item));
    for (const q of this.queues.values()) {
      for (const w of q.waiting.splice(0)) w.reject(errorFor(w.item));
      q.queuedBytes = 0;
    }
  }

  private async sendBatch(target: BatchTarget, batch: Waiting[]): Promise<void> {
    const { agent, node } = this.sender;
    const body = defined({ v: 1, agent, node, domain: target.domain, items: batch.map((w) => w.item) });
    let reply: RememberBatchReply;
    try {
      reply = await this.request<RememberBatchReply>(target.batch, body, earliestDeadline(batch));
    } catch (err) {
      if (isUnknownBatchOp(err)) {
        this.unsupported.set(target.batch, Date.now() + RETRY_BATCH_OP_MS);
        return this.sendEach(target, batch);
      }
      if (err instanceof ShardmindError && err.code === ErrorCode.TOO_LARGE && batch.length > 1) {
        // The hosts take smaller requests than the default: remember their limit, send the halves.
        const limit = /the limit is (\d+) bytes/.exec(err.message);
        const estimate = batch.reduce((sum, w) => sum + w.bytes, 0);
        this.budgets.set(target.batch, limit ? Math.max(1024, Math.floor(Number(limit[1]) * 0.75)) : Math.max(1024, Math.floor(estimate / 2)));
        const half = Math.ceil(batch.length / 2);
        const parts = [batch.slice(0, half), batch.slice(half)];
        await Promise.all(parts.map((part) => (part.length === 1 ? this.sendEach(target, part) : this.sendBatch(target, part))));
        return;
      }
      for (const w of batch) w.reject(err);
      return;
    }
    const results: readonly unknown[] = Array.isArray(reply?.results) ? reply.results : [];
    for (const [i, w] of batch.entries()) {
      const slot = results[i];
      if (!isRecord(slot)) {
        w.reject(new ShardmindError(ErrorCode.INTERNAL, `remember_batch answered ${results.length} results for ${batch.length} items`));
      } else if (isRecord(slot['error'])) {
        const e = slot['error'];
        w.reject(new ShardmindError(String(e['code']) as ErrorCode, String(e['message'])));
      } else if (typeof slot['factId'] === 'string' && typeof slot['seq'] === 'number' && typeof slot['domain'] === 'string') {
        w.resolve({ v: 1, ...(slot as Omit<RememberReply, 'v'>) });
      } else {
        w.reject(new ShardmindError(ErrorCode.INTERNAL, `remember_batch answered an item with neither a result nor an error`));
      }
    }
  }

  /** Each call as its own `remember`, all at once. */
  private async sendEach(target: BatchTarget, batch: Waiting[]): Promise<void> {
    const { agent, node } = this.sender;
    await Promise.all(
      batch.map((w) =>
        this.request<RememberReply>(target.single, defined({ v: 1, agent, node, domain: target.domain, ...w.item }), w.deadline).then(w.resolve, w.reject),
      ),
    );
  }
}

function earliestDeadline(batch: readonly Waiting[]): number {
  let earliest = Infinity;
  for (const w of batch) if (w.deadline < earliest) earliest = w.deadline;
  return earliest;
}

function describe(target: BatchTarget): string {
  return target.key.startsWith('shard ') ? `the ${target.domain} shard` : `the router${target.domain === undefined ? '' : ` (domain ${target.domain})`}`;
}

/**
 * An upper bound of the item's msgpack size without encoding it: the text's exact UTF-8 length (it is most of an
 * item), ids (ASCII by the wire's rules) at their length, names at 3 bytes per UTF-16 unit (UTF-8's worst), and
 * room for the keys, the timestamps and the numbers.
 */
function estimateBytes(item: RememberBatchItem): number {
  const f = item.fact;
  let names = (f.subject?.length ?? 0) + (f.predicate?.length ?? 0);
  if (typeof f.object === 'string') names += f.object.length;
  else if (f.object !== undefined) names += f.object.entity.length;
  return Buffer.byteLength(f.text) + item.opId.length + (item.task?.length ?? 0) + names * 3 + 96 + (f.observedAt || f.validFrom || f.validTo ? 96 : 0);
}

function isUnknownBatchOp(err: unknown): boolean {
  return err instanceof ShardmindError && err.code === ErrorCode.BAD_REQUEST && /unknown (op|operation)\b.*remember_batch/.test(err.message);
}
