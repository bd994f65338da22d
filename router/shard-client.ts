/**
 * How the router talks to shards: over the wire only (`sm.shard.<domain>.<op>`, msgpack), never by importing the
 * shard code. A shard that does not answer in time or has no leader subscribed becomes a retryable UNAVAILABLE;
 * an error reply becomes the `ShardmindError` it names. `recallMany` asks several shards in parallel and merges:
 * a domain that fails is reported in `missing`, not fatal, unless every domain failed.
 */
import type { NatsConnection } from 'nats';
import {
  ErrorCode,
  ShardmindError,
  decodePayload,
  encodePayload,
  shardSubject,
  toWireError,
  unwrapReply,
  type RecallReply,
  type RecallRequest,
  type WireFact,
} from '../protocol/index.ts';

/** Replies that mean "this shard did nothing, ask again shortly". */
const REFUSALS: ReadonlySet<string> = new Set([ErrorCode.NOT_LEADER, ErrorCode.SHARD_MOVED]);

/** UNAVAILABLE because nobody was subscribed: nothing happened, so the router may ask again. */
class NoLeaderSubscribed extends ShardmindError {
  constructor(domain: string, cause: unknown) {
    super(ErrorCode.UNAVAILABLE, `no leader is serving the ${domain} shard right now`, { cause });
  }
}

export class ShardClient {
  constructor(
    private readonly nc: NatsConnection,
    /** Per request, per shard. */
    readonly timeoutMs: number,
  ) {}

  /**
   * One request to one shard's leader; the typed reply or a thrown `ShardmindError`. Within `timeoutMs` it asks
   * again when the shard said it did nothing — no leader subscribed, NOT_LEADER, SHARD_MOVED: a failover or a
   * hand-off in progress — which is safe for writes too. A timeout is not retried: the write may have happened.
   */
  async ask<T>(domain: string, op: string, body: object, timeoutMs = this.timeoutMs): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    const payload = encodePayload(body, 'msgpack');
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.askOnce<T>(domain, op, payload, Math.max(1, deadline - Date.now()));
      } catch (err) {
        const pause = Math.min(50 * 2 ** attempt, 250);
        const refused = err instanceof NoLeaderSubscribed || (err instanceof ShardmindError && REFUSALS.has(err.code));
        if (!refused || Date.now() + pause >= deadline) throw err;
        await new Promise((r) => setTimeout(r, pause));
      }
    }
  }

  private async askOnce<T>(domain: string, op: string, payload: Uint8Array, timeoutMs: number): Promise<T> {
    let data: Uint8Array;
    try {
      const reply = await this.nc.request(shardSubject(domain, op), payload, { timeout: timeoutMs });
      data = reply.data;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === '503') throw new NoLeaderSubscribed(domain, err);
      // A timeout is retryable by the agent (its client resends with the same opId), not by the router.
      if (code === 'TIMEOUT') {
        throw new ShardmindError(ErrorCode.UNAVAILABLE, `the ${domain} shard did not answer within ${timeoutMs} ms`, { cause: err });
      }
      throw new ShardmindError(ErrorCode.UNAVAILABLE, `${domain} shard: ${(err as Error).message}`, { cause: err });
    }
    return unwrapReply<T>(decodePayload(data, 'msgpack'));
  }

  /**
   * A recall asked of several domains at once, merged best score first and cut to `limit`. Throws only when every
   * domain failed (then with the first domain's error: an answer made of nothing but gaps would read as "nothing
   * is known").
   */
  async recallMany(domains: readonly string[], request: RecallRequest, limit: number): Promise<RecallReply> {
    // The shard knows its own domain and nothing of tasks: those fields stay at the router.
    const { domain: _domain, task: _task, ...body } = request;
    const answers = await Promise.allSettled(domains.map((d) => this.ask<RecallReply>(d, 'recall', body)));
    const facts: WireFact[] = [];
    const missing: { domain: string; error: string }[] = [];
    const seqs: Record<string, number> = {};
    let firstError: unknown;
    answers.forEach((a, i) => {
      const domain = domains[i]!;
      if (a.status === 'fulfilled') {
        facts.push(...a.value.facts.map((f) => (f.domain ? f : { ...f, domain })));
        Object.assign(seqs, a.value.seqs ?? {});
      } else {
        firstError ??= a.reason;
        const e = toWireError(a.reason);
        missing.push({ domain, error: `${e.code}: ${e.message}` });
      }
    });
    if (domains.length > 0 && missing.length === domains.length) throw firstError;
    facts.sort((a, b) => b.score - a.score);
    const reply: RecallReply = { v: 1, domains: [...domains], facts: facts.slice(0, limit), seqs };
    return missing.length > 0 ? { ...reply, missing } : reply;
  }
}
