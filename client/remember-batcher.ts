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
 * op": the batcher then sends each call alone from then on.
 */
import { defined } from './convert.ts';
import { ErrorCode, LIMITS, ShardmindError, type RememberBatchItem, type RememberBatchReply, type RememberReply } from '../protocol/index.ts';

/** What the batcher sends through: the client's retrying request. */
export type BatchRequest = <T>(subject: string, body: object) => Promise<T>;

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
  readonly target: BatchTarget;
  waiting: Waiting[];
  inFlight: number;
  flushScheduled: boolean;
}

export class RememberBatcher {
  private readonly queues = new Map<string, ShardQueue>();
  /** Subjects whose server answered that it does not know `remember_batch`: calls to them go alone from then on. */
  private readonly unsupported = new Set<string>();
  /** A smaller byte budget for a place whose hosts refused a batch as too large (their `maxPayloadBytes` is lower). */
  private readonly budgets = new Map<string, number>();

  constructor(
    private readonly request: BatchRequest,
    private readonly sender: { readonly agent: string; readonly node: string | undefined },
    private readonly maxInFlight = BATCH_IN_FLIGHT,
  ) {}

  remember(target: BatchTarget, item: RememberBatchItem): Promise<RememberReply> {
    let q = this.queues.get(target.key);
    if (q === undefined) {
      q = { target, waiting: [], inFlight: 0, flushScheduled: false };
      this.queues.set(target.key, q);
    }
    const queue = q;
    return new Promise<RememberReply>((resolve, reject) => {
      queue.waiting.push({ item, bytes: estimateBytes(item), resolve, reject });
      if (queue.inFlight < this.maxInFlight) this.scheduleFlush(queue);
    });
  }

  /** At the end of this tick, so calls made together go together. */
  private scheduleFlush(q: ShardQueue): void {
    if (q.flushScheduled) return;
    q.flushScheduled = true;
    queueMicrotask(() => {
      q.flushScheduled = false;
      while (q.waiting.length > 0 && q.inFlight < this.maxInFlight) this.send(q, this.take(q));
    });
  }

  /** The next batch: in call order, at most LIMITS.batchItems items and the byte budget (at least one item). */
  private take(q: ShardQueue): Waiting[] {
    const budget = this.budgets.get(q.target.batch) ?? MAX_BATCH_BYTES;
    let n = 0;
    let bytes = 0;
    while (n < q.waiting.length && n < LIMITS.batchItems) {
      const next = q.waiting[n]!.bytes;
      if (n > 0 && bytes + next > budget) break;
      bytes += next;
      n++;
    }
    return q.waiting.splice(0, n);
  }

  private send(q: ShardQueue, batch: Waiting[]): void {
    q.inFlight++;
    const sent = batch.length === 1 || this.unsupported.has(q.target.batch) ? this.sendEach(q.target, batch) : this.sendBatch(q.target, batch);
    void sent.finally(() => {
      q.inFlight--;
      if (q.waiting.length > 0) this.scheduleFlush(q);
      else if (q.inFlight === 0) this.queues.delete(q.target.key);
    });
  }

  private async sendBatch(target: BatchTarget, batch: Waiting[]): Promise<void> {
    const { agent, node } = this.sender;
    const body = defined({ v: 1, agent, node, domain: target.domain, items: batch.map((w) => w.item) });
    let reply: RememberBatchReply;
    try {
      reply = await this.request<RememberBatchReply>(target.batch, body);
    } catch (err) {
      if (isUnknownBatchOp(err)) {
        this.unsupported.add(target.batch);
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
    for (const [i, w] of batch.entries()) {
      const slot = reply.results[i];
      if (slot === undefined) w.reject(new ShardmindError(ErrorCode.INTERNAL, `remember_batch answered ${reply.results.length} results for ${batch.length} items`));
      else if ('error' in slot) w.reject(new ShardmindError(slot.error.code as ErrorCode, slot.error.message));
      else w.resolve({ v: 1, ...slot });
    }
  }

  /** Each call as its own `remember`, all at once. */
  private async sendEach(target: BatchTarget, batch: Waiting[]): Promise<void> {
    const { agent, node } = this.sender;
    await Promise.all(
      batch.map((w) => this.request<RememberReply>(target.single, defined({ v: 1, agent, node, domain: target.domain, ...w.item })).then(w.resolve, w.reject)),
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
  return err instanceof ShardmindError && err.code === ErrorCode.BAD_REQUEST && /unknown (op|operation)\b.*remember_batch/.test(err.message);
}
