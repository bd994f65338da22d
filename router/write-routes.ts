/**
 * Where each write without a named domain went, per opId, so that a retry goes to the same shard.
 *
 * A `remember` without `domain` is routed by its task (which can re-route between two attempts) or by the classifier
 * (which keeps learning from the shared example stream, at each router's own pace). A shard dedupes by opId, but
 * only its own: a retry routed to a second domain is applied there again, and the fact is in two domains. So the
 * first attempt records its domain with `kv.create(<opId>, domain)` in the KV bucket `sm_write_routes`, and any
 * later attempt with that opId — on any router — finds the record and goes where the first went.
 *
 * - `kv.create` is a put with an expected last subject sequence of 0: one attempt wins, the others read what it
 *   recorded. It is safe on nats-server 2.9 clusters (DESIGN.md: epoch claims rely on it; only `update(revision)`
 *   races there). Records are never updated or deleted; the bucket's max age drops them.
 * - The bucket reads through the stream leader (`allow_direct: false`): a direct get may be answered by a replica that
 *   has not stored a record the quorum acknowledged a moment ago, and "no record" would be the wrong answer.
 * - Keys are the opId in base64url: opIds may hold `:` and `@`, which a KV key may not.
 * - Only writes an agent may repeat pay for a record: those without `domain` that carry the agent's opId. An opId the
 *   router made itself is never sent again by anyone but the router, which keeps its first choice while it retries.
 *
 * A `task.begin` with an opId records the task it makes here too (`pinTaskBegin`), so a retried begin answers that
 * task instead of making a second one (§88).
 *
 * Decision record: docs/decisions.md §51.
 */
import type { KV, NatsConnection } from 'nats';
import { ErrorCode, ShardmindError } from '../protocol/index.ts';
import { withJetStreamRetry } from './jetstream-retry.ts';

export const WRITE_ROUTE_BUCKET = 'sm_write_routes';
/**
 * How long a write's domain is kept. The TypeScript SDK gives a call 10 s by default (its deadline is configurable);
 * ten minutes covers that many times over, and an agent process retrying after a restart of its own, while keeping
 * the bucket to the last ten minutes of domain-less writes.
 */
export const WRITE_ROUTE_MAX_AGE_MS = 10 * 60 * 1000;
/** How long a `task.begin`'s opId answers the task it made: the write-route bucket's age, for the same reasons. */
export const TASK_BEGIN_WINDOW_MS = WRITE_ROUTE_MAX_AGE_MS;
/** JetStream's "wrong last sequence": the key already has a record. */
const WRONG_LAST_SEQUENCE = 10071;
/** How long a reader waits for a record it was told exists to become readable (a stream leader change). */
const READ_BACK_MS = 2_000;

export class WriteRoutes {
  private constructor(private readonly kv: KV) {}

  /** Opens (creating when needed) the bucket. Several routers may race here: identical creates are harmless. */
  static async open(nc: NatsConnection, options: { replicas: number }): Promise<WriteRoutes> {
    const js = nc.jetstream();
    const kv = await withJetStreamRetry(
      'open the write-route bucket',
      () => js.views.kv(WRITE_ROUTE_BUCKET, { history: 1, replicas: options.replicas, ttl: WRITE_ROUTE_MAX_AGE_MS, allow_direct: false }),
      30_000,
    );
    // As for the task bucket: a fresh cluster's bucket answers once its stream has a leader; wait here, at start.
    await withJetStreamRetry('reach the write-route bucket', () => kv.get('ready-probe'), 30_000);
    return new WriteRoutes(kv);
  }

  /**
   * The domain the write `opId` goes to: `chosen` when this is its first attempt (now recorded), else the domain
   * its first attempt recorded. Rejects with a retryable UNAVAILABLE when the bucket cannot be reached: the write
   * has then gone nowhere, and the agent's retry (same opId) comes back here.
   */
  async pin(opId: string, chosen: string): Promise<string> {
    return this.first(Buffer.from(opId, 'utf8').toString('base64url'), chosen, `write ${opId}`);
  }

  /**
   * The task the `task.begin` of `agent` with `opId` makes: `task` when this is its first attempt (now recorded),
   * else the task its first attempt recorded, for TASK_BEGIN_WINDOW_MS. The same bucket as the writes' routes: a
   * begin is a write that makes a task, and its retries come within the same deadlines. Keyed by agent too, so two
   * agents' ids never meet. Rejects with a retryable UNAVAILABLE when the bucket cannot be reached: no task is made.
   */
  async pinTaskBegin(agent: string, opId: string, task: string): Promise<string> {
    // `begin.` cannot start a write's key: base64url has no dot. An agent id holds no `/` (protocol ids).
    return this.first(`begin.${Buffer.from(`${agent}/${opId}`, 'utf8').toString('base64url')}`, task, `task.begin ${opId}`);
  }

  /** `value` recorded under `key` if nothing is, and returned; else what is recorded. */
  private async first(key: string, value: string, what: string): Promise<string> {
    try {
      await withJetStreamRetry(`record ${what}`, () => this.kv.create(key, value));
      return value;
    } catch (err) {
      if ((err as { api_error?: { err_code?: number } }).api_error?.err_code !== WRONG_LAST_SEQUENCE) throw err;
    }
    return this.recorded(what, key);
  }

  /** The value recorded for a key that exists. Retries a moment if it does not read back yet. */
  private async recorded(what: string, key: string): Promise<string> {
    const deadline = Date.now() + READ_BACK_MS;
    for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
      const entry = await withJetStreamRetry(`read what ${what} recorded`, () => this.kv.get(key));
      if (entry && entry.operation === 'PUT' && entry.value.length > 0) return entry.string();
      if (Date.now() + delay > deadline) {
        throw new ShardmindError(ErrorCode.UNAVAILABLE, `${what}: its record exists but could not be read back`);
      }
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
