/**
 * Puts concurrent `remember` calls to one shard into one request (`remember_batch`), the way a Pub/Sub or Kafka
 * producer batches publishes — but with no linger: a call is never held back to wait for company.
 *
 * While fewer than `maxInFlight` requests to the shard are outstanding, what was called in the current tick goes
 * out at the end of it (one call alone goes as a plain `remember`, exactly the bytes it always was). Calls made
 * while that many are outstanding wait for one to come back and then go together. An agent process with many
 * tasks writing at once sends a few requests instead of one per fact; the shard then puts them in one log message
 * (its own group commit), so one JetStream append, one fsync and one reply cover them all.
 *
 * Each call keeps its own opId and gets its own result or error: a bad fact fails only itself. A failure of the
 * whole request (the shard is moving, a timeout) is retried by the client with the same opIds, so what already
 * landed answers as a duplicate and nothing is applied twice. A host from before `remember_batch` answers "unknown
 * op": the batcher then sends each call alone from then on.
 */
import { defined } from './convert.ts';
import { ErrorCode, LIMITS, ShardmindError, type RememberBatchItem, type RememberBatchReply, type RememberReply } from '../protocol/index.ts';

/** What the batcher sends through: the client's retrying request to a shard's op. */
export type ShardRequest = <T>(domain: string, op: 'remember' | 'remember_batch', body: object) => Promise<T>;

/** Requests to one shard outstanding before further calls wait to go together. */
export const BATCH_IN_FLIGHT = 2;
/** A batch's estimated size stays under this: the hosts' default payload limit is 64 KiB. */
export const MAX_BATCH_BYTES = 48 * 1024;

interface Waiting {
  readonly item: RememberBatchItem;
  readonly bytes: number;
  readonly resolve: (r: RememberReply) => void;
  readonly reject: (e: unknown) => void;
}

interface ShardQueue {
  waiting: Waiting[];
  inFlight: number;
  flushScheduled: boolean;
}

export class RememberBatcher {
  private readonly queues = new Map<string, ShardQueue>();
  /** Set once a host answered that it does not know `remember_batch`: every call goes alone from then on. */
  private unsupported = false;

  constructor(
    private readonly request: ShardRequest,
    private readonly sender: { readonly agent: string; readonly node: string | undefined },
    private readonly maxInFlight = BATCH_IN_FLIGHT,
  ) {}

  remember(domain: string, item: RememberBatchItem): Promise<RememberReply> {
    let q = this.queues.get(domain);
    if (q === undefined) {
      q = { waiting: [], inFlight: 0, flushScheduled: false };
      this.queues.set(domain, q);
    }
    const queue = q;
    return new Promise<RememberReply>((resolve, reject) => {
      queue.waiting.push({ item, bytes: estimateBytes(item), resolve, reject });
      if (queue.inFlight < this.maxInFlight) this.scheduleFlush(domain, queue);
    });
  }

  /** At the end of this tick, so calls made together go together. */
  private scheduleFlush(domain: string, q: ShardQueue): void {
    if (q.flushScheduled) return;
    q.flushScheduled = true;
    queueMicrotask(() => {
      q.flushScheduled = false;
      while (q.waiting.length > 0 && q.inFlight < this.maxInFlight) this.send(domain, q, this.take(q));
    });
  }

  /** The next batch: in call order, at most LIMITS.batchItems items and MAX_BATCH_BYTES (at least one item). */
  private take(q: ShardQueue): Waiting[] {
    let n = 0;
    let bytes = 0;
    while (n < q.waiting.length && n < LIMITS.batchItems) {
      const next = q.waiting[n]!.bytes;
      if (n > 0 && bytes + next > MAX_BATCH_BYTES) break;
      bytes += next;
      n++;
    }
    return q.waiting.splice(0, n);
  }

  private send(domain: string, q: ShardQueue, batch: Waiting[]): void {
    q.inFlight++;
    const sent = batch.length === 1 || this.unsupported ? this.sendEach(domain, batch) : this.sendBatch(domain, batch);
    void sent.finally(() => {
      q.inFlight--;
      if (q.waiting.length > 0) this.scheduleFlush(domain, q);
      else if (q.inFlight === 0) this.queues.delete(domain);
    });
  }

  private async sendBatch(domain: string, batch: Waiting[]): Promise<void> {
    const body = defined({ v: 1, agent: this.sender.agent, node: this.sender.node, domain, items: batch.map((w) => w.item) });
    let reply: RememberBatchReply;
    try {
      reply = await this.request<RememberBatchReply>(domain, 'remember_batch', body);
    } catch (err) {
      if (isUnknownBatchOp(err)) {
        this.unsupported = true;
        return this.sendEach(domain, batch);
      }
      for (const w of batch) w.reject(err);
      return;
    }
    for (const [i, w] of batch.entries()) {
      const slot = reply.results[i];
      if (slot === undefined) w.reject(new ShardmindError(ErrorCode.INTERNAL, `remember_batch answered ${reply.results.length} results for ${batch.length} items`));
      else if ('error' in slot) w.reject(new ShardmindError(slot.error.code as ErrorCode, slot.error.message));
      else w.resolve({ v: 1, domain: reply.domain, ...slot });
    }
  }

  /** Each call as its own `remember`, all at once. */
  private async sendEach(domain: string, batch: Waiting[]): Promise<void> {
    await Promise.all(
      batch.map((w) =>
        this.request<RememberReply>(domain, 'remember', defined({ v: 1, agent: this.sender.agent, node: this.sender.node, domain, ...w.item })).then(
          w.resolve,
          w.reject,
        ),
      ),
    );
  }
}

/** An upper bound of the item's msgpack size without encoding it: UTF-8 is at most 3 bytes per UTF-16 unit. */
function estimateBytes(item: RememberBatchItem): number {
  const f = item.fact;
  let chars = f.text.length + (f.subject?.length ?? 0) + (f.predicate?.length ?? 0) + (item.opId?.length ?? 0) + (item.task?.length ?? 0);
  if (typeof f.object === 'string') chars += f.object.length;
  else if (f.object !== undefined) chars += f.object.entity.length;
  return chars * 3 + 160;
}

function isUnknownBatchOp(err: unknown): boolean {
  return err instanceof ShardmindError && err.code === ErrorCode.BAD_REQUEST && err.message.includes('unknown op "remember_batch"');
}
