/**
 * `sm.mem.recall_batch`: several routed recalls in one message, for an agent that has many recalls outstanding and
 * does not know their domains (the SDK's concurrent routed recalls, client/recall-batcher.ts). Each item is what a
 * lone `sm.mem.recall` of it would be, and its result is what that recall would have answered:
 *
 * 1. Each item is planned as `recall` plans it (`RecallPlan`: its named domains, its task's, the classifier's
 *    fan-out with the predicate's homes, or every domain) and split into one part per domain asked.
 * 2. The parts bound for one shard's leader go to it as one `sm.shard.<domain>.recall_batch` (a lone part as a plain
 *    `recall`), every shard at once; a part that may be read from a replica (`maxStaleMs`) goes alone, as replicas
 *    serve no batches.
 * 3. Each item's parts are merged as `recall` merges them (`mergeRecalls`: best first, cut to the limit, `seqs`,
 *    `staleMs`, `partial`, `missing`, `classification`). An item naming one domain in a msgpack batch gets its
 *    shard's result as that shard wrote it (its layout, its columns), as a lone msgpack recall is handed over.
 *
 * A batch whose items all name the same one domain (msgpack, no replica read) is what the shard form already is: its
 * bytes go to that shard's `recall_batch` as they came, and the shard answers the agent itself (`handOff`), as the
 * router does for a lone recall naming one domain.
 *
 * What fails an item stays in its slot (`{ v: 1, error }`): a bad field (named `recalls[i].…`), an unknown domain or
 * task, every domain it asked failing. What fails a whole shard's part of the batch (no leader, a timeout) fails
 * those parts only: an item that asked other domains too answers with that domain in `missing`, as a lone recall
 * would. Only the envelope (`recalls` not a list of 1..64, a body over the payload limit) fails the request.
 */
import {
  ErrorCode,
  LIMITS,
  ShardmindError,
  errorReply,
  isErrorReply,
  isRecord,
  parseRecallBatchRequest,
  type Encoding,
  type RecallBatchReply,
  type RecallReply,
  type RecallRequest,
} from '../protocol/index.ts';
import type { DomainProbability } from './classifier.ts';
import { mergeRecalls, shardRecallBody, type ReadRoute, type ShardClient } from './shard-client.ts';

/** The domains a routed recall asks, whether the request named them, and the distribution that chose them if any. */
export interface RecallPlan {
  readonly domains: readonly string[];
  /** The request's own `domain`: a lone msgpack recall naming one is answered by that shard as it writes it. */
  readonly named: boolean;
  readonly classification?: readonly DomainProbability[];
}

export interface RecallBatchDeps<H> {
  /** `sm.mem.recall`'s choice of domains for one recall; rejects for an unknown domain or task. */
  readonly plan: (req: RecallRequest) => Promise<RecallPlan>;
  /** The facts a merged answer keeps. */
  readonly limitOf: (req: RecallRequest) => number;
  /** Where a read goes: a replica when it says how stale it may be, else the leader (undefined). */
  readonly routeOf: (maxStaleMs: number | undefined) => (domain: string) => ReadRoute | undefined;
  /** How long the router waits for a shard's answer to a read with this floor. */
  readonly readTimeout: (minSeq: Readonly<Record<string, number>> | undefined) => number;
  readonly shards: ShardClient;
  /** Whether the domain's leader was heard lately: only then is a request handed to it to answer the agent. */
  readonly heard: (domain: string) => boolean;
  readonly known: ReadonlySet<string>;
  /** Hands the request's bytes to the domain's `recall_batch`, answering the agent's inbox itself. */
  readonly handOff: (domain: string, data: Uint8Array, timeoutMs: number) => H;
}

/** The request as it arrived (service.ts's RawRequest). */
interface Raw {
  readonly data: Uint8Array;
  readonly encoding: Encoding;
  readonly reply: string;
}

/** One domain of one item: what the shard is asked, and (once asked) its answer. */
interface Part {
  readonly slot: number;
  readonly domain: string;
  readonly body: object;
  readonly route: ReadRoute | undefined;
  readonly timeoutMs: number;
  answer?: PromiseSettledResult<RecallReply>;
}

/** An item once planned: its parts in its plan's order, or the error that refused it. */
type Planned =
  | { readonly error: unknown }
  | { readonly plan: RecallPlan; readonly limit: number; readonly whole: boolean; readonly parts: readonly Part[] };

/** Answers a router `recall_batch`: the reply body, or what `deps.handOff` made when one shard answers the agent. */
export async function answerRecallBatch<H>(body: unknown, raw: Raw, deps: RecallBatchDeps<H>): Promise<RecallBatchReply | Uint8Array | H> {
  const one = raw.encoding === 'msgpack' ? oneShard(body, deps.known) : undefined;
  if (one !== undefined) {
    const timeoutMs = deps.readTimeout(one.waits ? {} : undefined);
    if (raw.reply !== '' && deps.heard(one.domain)) return deps.handOff(one.domain, raw.data, timeoutMs);
    try {
      return await deps.shards.forward(one.domain, 'recall_batch', raw.data, timeoutMs);
    } catch (err) {
      // A shard host from before recall_batch (a rolling upgrade): planned item by item below, which asks it alone.
      if (!isUnknownOp(err)) throw err;
    }
  }
  const { items } = parseRecallBatchRequest(body);
  const rawItems = (body as { recalls: unknown[] }).recalls;
  const planned: Planned[] = await Promise.all(
    items.map(async (item, slot): Promise<Planned> => {
      if (item instanceof ShardmindError) return { error: item };
      let plan: RecallPlan;
      try {
        plan = await deps.plan(item.req);
      } catch (err) {
        if (!(err instanceof ShardmindError)) throw err;
        return { error: new ShardmindError(err.code, `recalls[${slot}]: ${err.message}`, { retryable: err.retryable }) };
      }
      // As a lone msgpack recall naming one domain: the shard's reply as it writes it, the item's layout and all.
      const whole = raw.encoding === 'msgpack' && plan.named && plan.domains.length === 1;
      // An item's `v` may be left out in a batch, not in a lone recall (a part may go alone): it is 1 (checked).
      const shardBody = whole ? { ...(rawItems[slot] as object), v: 1 } : shardRecallBody(item.req);
      const route = deps.routeOf(item.req.maxStaleMs);
      const timeoutMs = deps.readTimeout(item.req.minSeq);
      const parts = plan.domains.map((domain) => ({ slot, domain, body: shardBody, route: route(domain), timeoutMs }));
      return { plan, limit: deps.limitOf(item.req), whole, parts };
    }),
  );
  const parts = planned.flatMap((p) => ('parts' in p ? p.parts : []));
  const byDomain = new Map<string, Part[]>();
  const alone: Part[] = [];
  for (const part of parts) {
    if (part.route !== undefined) alone.push(part);
    else byDomain.set(part.domain, [...(byDomain.get(part.domain) ?? []), part]);
  }
  await Promise.all([...alone.map((part) => askAlone(deps.shards, part)), ...[...byDomain].map(([domain, group]) => askTogether(deps.shards, domain, group))]);
  const results = planned.map((p) => {
    if ('error' in p) return errorReply(p.error);
    const answers = p.parts.map((part) => part.answer!);
    if (p.whole) {
      const only = answers[0]!;
      return only.status === 'fulfilled' ? only.value : errorReply(only.reason);
    }
    try {
      const merged = mergeRecalls(p.plan.domains, answers, p.limit);
      return p.plan.classification ? { ...merged, classification: p.plan.classification } : merged;
    } catch (err) {
      return errorReply(err);
    }
  });
  return { v: 1, results };
}

/**
 * The domain every item names alone, when the batch is one shard's as it stands: a msgpack envelope of 1..64 items,
 * each an object naming the same configured domain (a string), none asking for a replica read. `waits`: some item
 * carries a `minSeq` floor (the longer timeout). Anything else is planned item by item, which says what is wrong.
 */
function oneShard(body: unknown, known: ReadonlySet<string>): { domain: string; waits: boolean } | undefined {
  if (!isRecord(body) || body['v'] !== 1) return undefined;
  const recalls = body['recalls'];
  if (!Array.isArray(recalls) || recalls.length === 0 || recalls.length > LIMITS.recallBatchItems) return undefined;
  let domain: string | undefined;
  let waits = false;
  for (const item of recalls) {
    if (!isRecord(item)) return undefined;
    const named = item['domain'];
    if (typeof named !== 'string' || (domain !== undefined && named !== domain)) return undefined;
    if (item['maxStaleMs'] !== undefined && item['maxStaleMs'] !== null) return undefined;
    if (item['minSeq'] !== undefined && item['minSeq'] !== null) waits = true;
    domain = named;
  }
  return domain !== undefined && known.has(domain) ? { domain, waits } : undefined;
}

/** A part as a plain recall (a replica read, or the only part bound for its shard). */
async function askAlone(shards: ShardClient, part: Part): Promise<void> {
  try {
    part.answer = { status: 'fulfilled', value: await shards.ask<RecallReply>(part.domain, 'recall', part.body, part.timeoutMs, part.route) };
  } catch (err) {
    part.answer = { status: 'rejected', reason: err };
  }
}

/**
 * The parts bound for one shard's leader as one `recall_batch`, in slot order; each part gets its own result. A
 * failure of the whole (no leader, a timeout) is every part's; a host that does not know the op, or a reply over
 * the server's max_payload, is asked again alone or in halves.
 */
async function askTogether(shards: ShardClient, domain: string, parts: readonly Part[]): Promise<void> {
  if (parts.length === 1) return askAlone(shards, parts[0]!);
  let reply: RecallBatchReply;
  try {
    const timeoutMs = Math.max(...parts.map((p) => p.timeoutMs));
    reply = await shards.ask<RecallBatchReply>(domain, 'recall_batch', { v: 1, recalls: parts.map((p) => p.body) }, timeoutMs);
  } catch (err) {
    if (isUnknownOp(err)) return void (await Promise.all(parts.map((p) => askAlone(shards, p))));
    if (err instanceof ShardmindError && err.code === ErrorCode.TOO_LARGE) {
      const half = Math.ceil(parts.length / 2);
      return void (await Promise.all([askTogether(shards, domain, parts.slice(0, half)), askTogether(shards, domain, parts.slice(half))]));
    }
    for (const p of parts) p.answer = { status: 'rejected', reason: err };
    return;
  }
  const results: readonly unknown[] = Array.isArray(reply.results) ? reply.results : [];
  parts.forEach((p, k) => {
    const r = results[k];
    if (isErrorReply(r)) {
      // The shard names the item by its place in the batch it was sent; the agent knows it by its own.
      const message = String(r.error.message).replace(/^recalls\[\d+\]/, `recalls[${p.slot}]`);
      p.answer = { status: 'rejected', reason: ShardmindError.fromWire({ code: r.error.code as ErrorCode, message, retryable: Boolean(r.error.retryable) }) };
    } else if (isRecord(r) && r['v'] === 1) {
      p.answer = { status: 'fulfilled', value: r as unknown as RecallReply };
    } else {
      p.answer = {
        status: 'rejected',
        reason: new ShardmindError(ErrorCode.INTERNAL, `the ${domain} shard answered ${results.length} results for ${parts.length} recalls`),
      };
    }
  });
}

/** A host's answer that it does not serve `recall_batch` (a build from before it). */
function isUnknownOp(err: unknown): boolean {
  return err instanceof ShardmindError && err.code === ErrorCode.BAD_REQUEST && err.message.includes('unknown op "recall_batch"');
}
