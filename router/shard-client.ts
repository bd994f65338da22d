/**
 * How the router talks to shards: over the wire only (`sm.shard.<domain>.<op>`, msgpack), never by importing the
 * shard code. A shard that does not answer in time or has no leader subscribed becomes a retryable UNAVAILABLE;
 * an error reply becomes the `ShardmindError` it names. `recallMany` asks several shards in parallel and merges:
 * a domain that fails is reported in `missing`, not fatal, unless every domain failed. `forward` returns a
 * successful reply's bytes undecoded, so a router answering from one shard can pass them on as they are, and
 * `handOff` lets the shard answer the agent itself (protocol/hand-off.ts).
 */
import type { Msg, MsgHdrs, NatsConnection } from 'nats';
import { ReplyMux } from './reply-mux.ts';
import {
  ErrorCode,
  REFUSAL_CODES,
  ShardmindError,
  decodePayload,
  encodePayload,
  headersOrNone,
  replicaNodeSubject,
  replicaSubject,
  shardSubject,
  toWireError,
  unwrapReply,
  type RecallReply,
  type RecallRequest,
  type WireFact,
} from '../protocol/index.ts';

/** Replies that mean "this shard did nothing, ask again shortly". */
const REFUSALS = REFUSAL_CODES;

/** UNAVAILABLE because nobody was subscribed: nothing happened, so the router may ask again. */
class NoLeaderSubscribed extends ShardmindError {
  constructor(domain: string, cause: unknown) {
    super(ErrorCode.UNAVAILABLE, `no leader is serving the ${domain} shard right now`, { cause });
  }
}

/**
 * Where a read goes. The leader by default; a request that says how stale it may be (`maxStaleMs`) goes to a
 * replica (`sm.replica.<domain>.<op>`), the one on `node` first when that Mini holds a copy.
 */
export interface ReadRoute {
  readonly replica: true;
  /** Try this Mini's replica first (no responders there: any replica). */
  readonly node?: string;
}

export class ShardClient {
  private readonly mux: ReplyMux;

  constructor(
    nc: NatsConnection,
    /** Per request, per shard. */
    readonly timeoutMs: number,
    log?: (line: string) => void,
  ) {
    this.mux = new ReplyMux(nc, log);
  }

  /**
   * One request to one shard's leader; the typed reply or a thrown `ShardmindError`. Within `timeoutMs` it asks
   * again after a refusal — no leader subscribed, NOT_LEADER, SHARD_MOVED: a failover or a hand-off in progress.
   * A refusal does not prove a write was not applied (a NOT_LEADER can follow one that landed), so the same bytes go
   * again: a write that is not idempotent on repeat must carry its opId (the router gives a `remember` one when the
   * agent did not). A timeout is not retried: the agent's client retries it, with its opId.
   */
  async ask<T>(domain: string, op: string, body: object, timeoutMs = this.timeoutMs, route?: ReadRoute): Promise<T> {
    const payload = encodePayload(body, 'msgpack');
    const reply = await this.retrying(timeoutMs, (left) => this.askOnce(domain, op, payload, left, route));
    return unwrapReply<T>(decodePayload(reply, 'msgpack'));
  }

  /**
   * `ask` for a request that arrived as msgpack `payload` and goes on unchanged: resolves with the successful
   * reply's msgpack bytes, to be passed on as they are.
   */
  async forward(domain: string, op: string, payload: Uint8Array, timeoutMs = this.timeoutMs, route?: ReadRoute): Promise<Uint8Array> {
    return this.retrying(timeoutMs, (left) => this.askOnce(domain, op, payload, left, route));
  }

  /**
   * Sends a msgpack request to one shard with `headers` naming the agent's reply subject, so that the shard answers
   * the agent itself. Resolves with undefined when it did (nothing came back to the router within `timeoutMs`).
   * When the shard sends the answer back here instead — a refusal (NOT_LEADER, SHARD_MOVED), nobody subscribed, or
   * a host too old to know the hand-off header — resolves with the bytes the router must send the agent itself,
   * after asking again with `forward` in the time left; rejects with the error to send when that fails.
   */
  async handOff(domain: string, op: string, payload: Uint8Array, headers: MsgHdrs, timeoutMs = this.timeoutMs): Promise<Uint8Array | undefined> {
    const deadline = Date.now() + timeoutMs;
    const bounced = await this.mux.handOff(shardSubject(domain, op), payload, headers, timeoutMs);
    return bounced === undefined ? undefined : this.afterBounce(domain, op, payload, bounced, deadline, timeoutMs);
  }

  /**
   * `handOff` without a promise per request (the router's common recall): `onBounce` is called only when the answer
   * came back to the router after all, with what `handOff` would have resolved or rejected with then. Throws if the
   * publish fails.
   */
  handOffThen(domain: string, op: string, payload: Uint8Array, headers: MsgHdrs, onBounce: (reply: Promise<Uint8Array>) => void, timeoutMs = this.timeoutMs): void {
    const deadline = Date.now() + timeoutMs;
    this.mux.handOffThen(shardSubject(domain, op), payload, headers, timeoutMs, (bounced) => {
      if (bounced !== undefined) onBounce(this.afterBounce(domain, op, payload, bounced, deadline, timeoutMs));
    });
  }

  /** What a handed-off request that came back becomes: the shard's success, a retry after a refusal, or the error. */
  private async afterBounce(domain: string, op: string, payload: Uint8Array, bounced: Msg, deadline: number, timeoutMs: number): Promise<Uint8Array> {
    const nobody = bounced.data.length === 0 && headersOrNone(bounced)?.code === 503;
    if (!nobody) {
      if (isPlainSuccess(bounced.data)) return bounced.data;
      try {
        unwrapReply(decodePayload(bounced.data, 'msgpack'));
        return bounced.data; // a success after all
      } catch (err) {
        if (!(err instanceof ShardmindError) || !REFUSALS.has(err.code)) throw err;
      }
    }
    const left = deadline - Date.now();
    if (left <= 0) throw didNotAnswer(domain, timeoutMs);
    return this.forward(domain, op, payload, left);
  }

  private async retrying<T>(timeoutMs: number, attempt: (timeoutMs: number) => Promise<T>): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (let n = 0; ; n++) {
      try {
        return await attempt(Math.max(1, deadline - Date.now()));
      } catch (err) {
        const pause = Math.min(50 * 2 ** n, 250);
        const refused = err instanceof NoLeaderSubscribed || (err instanceof ShardmindError && REFUSALS.has(err.code));
        if (!refused || Date.now() + pause >= deadline) throw err;
        await new Promise((r) => setTimeout(r, pause));
      }
    }
  }

  /** Stops waiting for replies (the router is stopping). */
  close(): void {
    this.mux.close();
  }

  private async askOnce(domain: string, op: string, payload: Uint8Array, timeoutMs: number, route?: ReadRoute): Promise<Uint8Array> {
    if (route?.node !== undefined) {
      // This Mini's replica first; "no responders" there means it holds none: any replica then, at once.
      try {
        return await this.askSubject(domain, replicaNodeSubject(domain, op, route.node), payload, timeoutMs);
      } catch (err) {
        if (!(err instanceof NoLeaderSubscribed)) throw err;
      }
    }
    return this.askSubject(domain, route ? replicaSubject(domain, op) : shardSubject(domain, op), payload, timeoutMs);
  }

  private async askSubject(domain: string, subject: string, payload: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    let data: Uint8Array;
    try {
      data = (await this.mux.request(subject, payload, timeoutMs)).data;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === '503') throw new NoLeaderSubscribed(domain, err);
      // A timeout is retryable by the agent (its client resends with the same opId), not by the router.
      if (code === 'TIMEOUT') throw didNotAnswer(domain, timeoutMs, err);
      throw new ShardmindError(ErrorCode.UNAVAILABLE, `${domain} shard: ${(err as Error).message}`, { cause: err });
    }
    // Only a reply that may be an error is decoded here; the error it carries is thrown.
    if (!isPlainSuccess(data)) unwrapReply(decodePayload(data, 'msgpack'));
    return data;
  }

  /**
   * A recall asked of several domains at once, merged by `mergeRecalls`: throws only when every domain failed.
   */
  async recallMany(domains: readonly string[], request: RecallRequest, limit: number, route?: (domain: string) => ReadRoute | undefined, timeoutMs = this.timeoutMs): Promise<RecallReply> {
    const body = shardRecallBody(request);
    const answers = await Promise.allSettled(domains.map((d) => this.ask<RecallReply>(d, 'recall', body, timeoutMs, route?.(d))));
    return mergeRecalls(domains, answers, limit);
  }
}

/** A router's recall as a shard is asked it: the shard knows its own domain and nothing of tasks, so those stay here. */
export function shardRecallBody(request: RecallRequest): Omit<RecallRequest, 'domain' | 'task'> {
  const { domain: _domain, task: _task, ...body } = request;
  return body;
}

/**
 * Each asked domain's recall answer (in `domains`' order) as one reply, best score first, cut to `limit`: `seqs`
 * of all, the largest `staleMs`, `partial` if any part was, and `missing` for the domains that failed. Throws only
 * when every domain failed (then with the first domain's error: an answer made of nothing but gaps would read as
 * "nothing is known"). `sm.mem.recall` and each result of `sm.mem.recall_batch` are merged here.
 */
export function mergeRecalls(domains: readonly string[], answers: readonly PromiseSettledResult<RecallReply>[], limit: number): RecallReply {
  const facts: WireFact[] = [];
  const missing: MissingDomain[] = [];
  const seqs: Record<string, number> = {};
  // Replica answers each carry a staleness bound: the merged answer is as stale as its stalest part.
  let staleMs: number | undefined;
  // A part cut by a bound on its shard's work leaves the whole answer cut.
  let partial = false;
  let firstError: unknown;
  answers.forEach((a, i) => {
    const domain = domains[i]!;
    if (a.status === 'fulfilled') {
      facts.push(...a.value.facts.map((f) => (f.domain ? f : { ...f, domain })));
      Object.assign(seqs, a.value.seqs ?? {});
      if (a.value.staleMs !== undefined) staleMs = Math.max(staleMs ?? 0, a.value.staleMs);
      if (a.value.partial === true) partial = true;
    } else {
      firstError ??= a.reason;
      missing.push(missingDomain(domain, a.reason));
    }
  });
  if (domains.length > 0 && missing.length === domains.length) throw firstError;
  facts.sort((a, b) => b.score - a.score);
  const reply: RecallReply = { v: 1, domains: [...domains], facts: facts.slice(0, limit), seqs, ...(staleMs !== undefined ? { staleMs } : {}), ...(partial ? { partial: true as const } : {}) };
  return missing.length > 0 ? { ...reply, missing } : reply;
}

/**
 * A domain a fanned-out read lacks: the error as every error reply has it (`code`, `message`, `retryable`), and as
 * `error`, the `CODE: message` string that readers from before those fields split.
 */
export interface MissingDomain {
  readonly domain: string;
  readonly error: string;
  readonly code: ErrorCode;
  readonly message: string;
  readonly retryable: boolean;
}

export function missingDomain(domain: string, reason: unknown): MissingDomain {
  const e = toWireError(reason);
  return { domain, error: `${e.code}: ${e.message}`, code: e.code, message: e.message, retryable: e.retryable };
}

function didNotAnswer(domain: string, timeoutMs: number, cause?: unknown): ShardmindError {
  return new ShardmindError(ErrorCode.UNAVAILABLE, `the ${domain} shard did not answer within ${timeoutMs} ms`, cause === undefined ? undefined : { cause });
}

/**
 * Whether msgpack reply bytes are certainly not an error, without decoding them: every reply our servers send
 * starts with the key `v` (= 1), and an error reply's next key is `error`. Anything else is decoded to find out.
 */
export function isPlainSuccess(data: Uint8Array): boolean {
  // The map header: msgpackr writes map16 (0xde + 2 bytes) for every object; other writers a fixmap.
  const at = data[0] === 0xde ? 3 : (data[0]! & 0xf0) === 0x80 ? 1 : -1;
  if (at < 0 || data.length < at + 3 + ERROR_KEY.length) return false;
  if (data[at] !== 0xa1 || data[at + 1] !== 0x76 || data[at + 2] !== 0x01) return false; // not "v": 1 first
  for (let i = 0; i < ERROR_KEY.length; i++) if (data[at + 3 + i] !== ERROR_KEY[i]) return true;
  return false;
}

/** The msgpack string "error". */
const ERROR_KEY = Uint8Array.of(0xa5, 0x65, 0x72, 0x72, 0x6f, 0x72);
