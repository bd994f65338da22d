/**
 * What a shard leader answers on `sm.shard.<domain>.<op>`: size check before decoding, decode (msgpack, or JSON
 * when asked), validate at the edge, then either turn the request into a log entry for the write pipeline
 * (remember, forget, retract) or read LMDB (recall, recall_batch, get, history — after waiting for `minSeq`). Every request gets
 * a reply in the request's encoding; every error becomes an error reply, never a crash.
 *
 * The subscription has no queue group on purpose: if an old leader is paused and a new one serves, both get each
 * request, and the paused one cannot swallow it.
 */
import { randomUUID } from 'node:crypto';
import type { Msg, NatsConnection, Subscription } from 'nats';
import { detached, guarded, ReportThrottle } from './guarded.ts';
import { answerable, handOffOf, respond, respondHandedOff } from './respond.ts';
import {
  ErrorCode,
  ShardmindError,
  badRequest,
  checkSize,
  decodePayload,
  encodingOf,
  replyEncodingAfter,
  errorReply,
  isReplicaOp,
  isShardOp,
  parseForgetRequest,
  parseRememberRequest,
  parseRememberBatchRequest,
  parseRecallBatchRequest,
  parseRetractRequest,
  parseEntityRequest,
  parseLookupRequest,
  readHeaders,
  toWireEntity,
  toWireError,
  rememberReply,
  packRememberReply,
  shardSubject,
  toFactInput,
  writeReply,
  REPLICA_FORWARD_HEADER,
  SHARD_OPS,
  type Encoding,
  type RememberBatchReply,
  type ShardOp,
} from '../protocol/index.ts';
import type {
  ApplyResult,
  AssertEntry,
  EntityEntry,
  ForgetEntry,
  LogEntry,
  RetractEntry,
  ShardStore,
  Source,
} from '../shards/index.ts';
import { observedAtProblem } from '../shards/index.ts';
import type { Clock } from './clock.ts';
import { RecallAnswer, onWire, parseRead, runRead, type Served } from './shard-reads.ts';
import { answerRecallBatch } from './recall-batch.ts';

export interface ShardServiceOptions {
  readonly domain: string;
  readonly node: string;
  readonly clock: Clock;
  readonly maxPayloadBytes: number;
  readonly minSeqWaitMs: number;
  readonly maxRecallLimit: number;
  readonly store: ShardStore;
  /** The write pipeline: append, apply, resolve with the applied result. */
  submit(entry: LogEntry): Promise<ApplyResult>;
  /**
   * The same with a callback (`WritePipeline.write`), called exactly once: a lone write's request is answered from
   * it without a promise per request. Without it, writes go through `submit`.
   */
  write?(entry: LogEntry, done: (err: ShardmindError | undefined, result: ApplyResult | undefined) => void): void;
  /** Resolves once this replica has applied `seq`, or rejects with TIMEOUT. */
  waitForSeq(seq: number, timeoutMs: number): Promise<void>;
  /** The sequence reads reflect. */
  position(): number;
  /**
   * Undefined when this leader may answer reads now (its lease holds); otherwise a promise that resolves once it
   * may, or rejects with NOT_LEADER.
   */
  readGate?(): Promise<void> | undefined;
  onInternalError(err: unknown, op: string): void;
}

/** Subscribes the leader to its shard's subjects; `unsubscribe()` or `drain()` on the result stops intake. */
export function serveShard(nc: NatsConnection, o: ShardServiceOptions): Subscription {
  // What the guard catches is a bug (a request that escaped every error reply): the actor's log, throttled.
  const throttle = new ReportThrottle((err, where) => o.onInternalError(err, where));
  const where = `shard ${o.domain}`;
  return nc.subscribe(shardSubject(o.domain, '*'), { callback: guarded(where, (msg) => answer(nc, msg, o, throttle), throttle) });
}

function answer(nc: NatsConnection, msg: Msg, o: ShardServiceOptions, throttle: ReportThrottle): void {
  // Headers are read once, here: nats.js throws on every read of a header block it cannot decode.
  const read = readHeaders(msg);
  // Only inboxes are answered (decisions §69): anything else would be a host publishing where the sender said.
  if (!answerable(msg, read.ok ? read.headers : undefined)) return;
  if (!read.ok) {
    if (msg.reply) respond(msg, errorReply(read.error), 'msgpack');
    return;
  }
  let encoding = encodingOf(read.headers);
  // A router that handed this request on asks for the answer to go straight to the agent (protocol/hand-off.ts).
  const handOff = handOffOf(read.headers, encoding);
  const op = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
  // A replica read that a follower found itself too stale for: the reply says the leader served it, as fresh.
  const forwardedBy = read.headers?.get(REPLICA_FORWARD_HEADER);
  const served: Served = forwardedBy ? { servedBy: o.node, staleMs: 0 } : undefined;
  let reply: unknown;
  try {
    reply = handleNow(op, msg.data, encoding, o, served);
  } catch (err) {
    reply = failure(err, op, o, served);
    encoding = replyEncodingAfter(err, encoding);
  }
  // Reads whose gate is open and whose minSeq is applied answer in this very callback: no promise (and no closure:
  // under tsx each one created also names itself) per request. A write is answered from the pipeline's callback.
  if (reply instanceof WriteAnswer) {
    reply.send(o, (err, body) => void (msg.reply && respondHandedOff(nc, msg, err === undefined ? body : failure(err, op, o, served), encoding, handOff)));
  } else if (reply instanceof Promise) {
    const answered = reply.then(
      (body: unknown) => void (msg.reply && respondHandedOff(nc, msg, onWire(body, encoding), encoding, handOff)),
      (err: unknown) => void (msg.reply && respondHandedOff(nc, msg, failure(err, op, o, served), encoding, handOff)),
    );
    detached(answered, `shard ${o.domain} ${op}`, throttle);
  } else if (msg.reply) {
    respondHandedOff(nc, msg, onWire(reply, encoding), encoding, handOff);
  }
}

/** The error reply; a forwarded replica read's NOT_FOUND says who answered, as a replica's does. */
function failure(err: unknown, op: string, o: ShardServiceOptions, served?: Served): unknown {
  if (!(err instanceof ShardmindError) || err.code === ErrorCode.INTERNAL) o.onInternalError(err, op);
  if (served !== undefined && err instanceof ShardmindError && err.code === ErrorCode.NOT_FOUND) return { ...errorReply(err), ...served };
  return errorReply(err);
}

/** One request, decoded and answered. Exported for actor-level tests that bypass NATS. */
export async function handle(op: string, data: Uint8Array, encoding: Encoding, o: ShardServiceOptions): Promise<unknown> {
  const now = handleNow(op, data, encoding, o);
  const reply = await (now instanceof WriteAnswer ? now.promise(o) : now);
  if (reply instanceof Uint8Array) return decodePayload(reply, encoding);
  return reply instanceof RecallAnswer ? reply.body() : reply;
}

/** How a write's request hears its outcome: the error, or (when `err` is undefined) the reply body. */
type Answered = (err: unknown, body: unknown) => void;

/**
 * Writes to submit, and how their results become the reply: returned instead of a promise so that the request is
 * answered from the pipeline's callbacks (`ShardServiceOptions.write`), without a promise per write.
 */
abstract class WriteAnswer {
  /** Submits the writes and calls `answered` once. */
  abstract send(o: ShardServiceOptions, answered: Answered): void;

  promise(o: ShardServiceOptions): Promise<unknown> {
    return new Promise((resolve, reject) => this.send(o, (err, body) => (err === undefined ? resolve(body) : reject(err))));
  }
}

/** One write (remember, forget, retract, entity): its reply is made from its applied result. */
class OneWrite extends WriteAnswer {
  constructor(
    private readonly entry: LogEntry,
    /** The reply to the applied result; may throw (a rejected entity) to answer with an error. */
    private readonly toReply: (r: ApplyResult) => unknown,
  ) {
    super();
  }

  send(o: ShardServiceOptions, answered: Answered): void {
    const toReply = this.toReply;
    submitWrite(o, this.entry, (err, r) => {
      if (err !== undefined || r === undefined) return answered(err ?? new ShardmindError(ErrorCode.INTERNAL, 'a write settled without a result'), undefined);
      let body: unknown;
      try {
        body = toReply(r);
      } catch (thrown) {
        return answered(thrown, undefined);
      }
      answered(undefined, body);
    });
  }
}

/**
 * A `remember_batch`: every item submitted in one go (so the pipeline puts them in as few log messages as it can,
 * often one group), the reply made once the last has settled. An item's own refusal (a bad fact, a rejected apply)
 * stays in its slot; a failure that is the shard's (not leading any more, a log or disk error) fails the whole
 * request, so the client retries the batch — the items that landed then answer from the log as duplicates.
 */
class BatchWrite extends WriteAnswer {
  constructor(
    private readonly domain: string,
    /** Per item: its entry, or the error that refused it before it was submitted. */
    private readonly items: readonly (AssertEntry | ShardmindError)[],
  ) {
    super();
  }

  send(o: ShardServiceOptions, answered: Answered): void {
    const n = this.items.length;
    const outcomes: (ApplyResult | ShardmindError | undefined)[] = new Array(n);
    let left = n;
    let failed: unknown;
    if (n === 0) return this.finish(outcomes, undefined, answered);
    const settleItem = (i: number, outcome: ApplyResult | ShardmindError): void => {
      outcomes[i] = outcome;
      if (--left === 0) this.finish(outcomes, failed, answered);
    };
    for (let i = 0; i < n; i++) {
      const item = this.items[i]!;
      if (item instanceof ShardmindError) {
        settleItem(i, item);
        continue;
      }
      submitWrite(o, item, (err, r) => {
        if (err !== undefined || r === undefined) {
          // The shard's failure (NOT_LEADER, a disk error, an internal one) fails the request, not just the item.
          if (!(err instanceof ShardmindError) || err.retryable || err.code === ErrorCode.INTERNAL) failed ??= err ?? new ShardmindError(ErrorCode.INTERNAL, 'a write settled without a result');
          settleItem(i, err instanceof ShardmindError ? err : new ShardmindError(ErrorCode.INTERNAL, String(err)));
        } else settleItem(i, r);
      });
    }
  }

  private finish(outcomes: readonly (ApplyResult | ShardmindError | undefined)[], failed: unknown, answered: Answered): void {
    if (failed !== undefined) return answered(failed, undefined);
    const results: RememberBatchReply['results'][number][] = [];
    for (const outcome of outcomes) {
      if (outcome === undefined) continue;
      if (outcome instanceof ShardmindError) {
        results.push({ error: toWireError(outcome) });
        continue;
      }
      try {
        const { v: _v, ...result } = rememberReply(this.domain, outcome);
        results.push(result);
      } catch (err) {
        if (!(err instanceof ShardmindError) || err.code === ErrorCode.INTERNAL) return answered(err, undefined);
        results.push({ error: toWireError(err) });
      }
    }
    const reply: RememberBatchReply = { v: 1, results };
    answered(undefined, reply);
  }
}

/** A write through the pipeline's callback when the options have one, else through `submit`. */
function submitWrite(o: ShardServiceOptions, entry: LogEntry, done: (err: unknown, r: ApplyResult | undefined) => void): void {
  if (o.write !== undefined) o.write(entry, done);
  else o.submit(entry).then((r) => done(undefined, r), (err: unknown) => done(err ?? new ShardmindError(ErrorCode.INTERNAL, 'a write failed without a reason'), undefined));
}

/**
 * The reply; a promise of it when a read has to wait (the lease, `minSeq`); or, for a write, a `WriteAnswer` that
 * submits it and answers from the pipeline's callback. Throws bad requests.
 */
function handleNow(op: string, data: Uint8Array, encoding: Encoding, o: ShardServiceOptions, served?: Served): unknown {
  checkSize(data, o.maxPayloadBytes);
  if (!isShardOp(op)) throw unknownOp(op);
  return handleBody(op, decodePayload(data, encoding), encoding, o, served);
}

function unknownOp(op: string): ShardmindError {
  return new ShardmindError(ErrorCode.BAD_REQUEST, `unknown op "${op}": a shard serves ${SHARD_OPS.join(', ')}`);
}

/** A decoded request body, validated and answered (or a promise of the answer). */
function handleBody(op: ShardOp, body: unknown, encoding: Encoding, o: ShardServiceOptions, served: Served): unknown {
  if (isReplicaOp(op)) {
    const read = parseRead(op, body);
    const wait = readWait(read.req.minSeq, o);
    return wait === undefined ? runRead(read, o, served) : wait.then(() => runRead(read, o, served));
  }
  switch (op) {
    case 'remember': {
      const req = parseRememberRequest(body);
      if (req.domain !== undefined && req.domain !== o.domain) {
        throw new ShardmindError(ErrorCode.BAD_REQUEST, `domain: this is the "${o.domain}" shard, the request names "${req.domain}"`);
      }
      const entry: AssertEntry = {
        v: 1,
        opId: req.opId ?? newOpId(o),
        recordedAt: o.clock.now(),
        source: source(o, req.agent, req.task, req.node),
        op: 'assert',
        fact: toFactInput(req.fact),
      };
      // Refused before it is appended: an observation from the future would never decay (world-time.ts).
      const ahead = observedAtProblem(entry.fact.observedAt, entry.recordedAt);
      if (ahead !== undefined) throw badRequest('fact.observedAt', ahead);
      // In msgpack the reply is written straight to bytes (the same bytes): 64 of them go out per commit under load.
      return new OneWrite(entry, encoding === 'msgpack' ? (r) => packRememberReply(o.domain, r) : (r) => rememberReply(o.domain, r));
    }
    case 'remember_batch': {
      const { req, items } = parseRememberBatchRequest(body);
      if (req.domain !== undefined && req.domain !== o.domain) {
        throw new ShardmindError(ErrorCode.BAD_REQUEST, `domain: this is the "${o.domain}" shard, the request names "${req.domain}"`);
      }
      const recordedAt = o.clock.now();
      const entries = items.map((item, i): AssertEntry | ShardmindError => {
        if (item instanceof ShardmindError) return item;
        const fact = toFactInput(item.fact);
        const ahead = observedAtProblem(fact.observedAt, recordedAt);
        if (ahead !== undefined) return badRequest(`items[${i}].fact.observedAt`, ahead);
        return { v: 1, opId: item.opId, recordedAt, source: source(o, req.agent, item.task, req.node), op: 'assert', fact };
      });
      return new BatchWrite(o.domain, entries);
    }
    case 'forget': {
      const req = parseForgetRequest(body);
      const entry: ForgetEntry = {
        v: 1,
        opId: req.opId ?? newOpId(o),
        recordedAt: o.clock.now(),
        source: source(o, req.agent, undefined, undefined),
        op: 'forget',
        factId: req.factId,
      };
      return new OneWrite(entry, (r) => writeReply(o.domain, r));
    }
    case 'entity': {
      const req = parseEntityRequest(body);
      refuseTakenNames(o.store, req.entity);
      const entry: EntityEntry = {
        v: 1,
        opId: req.opId ?? newOpId(o),
        recordedAt: o.clock.now(),
        source: source(o, req.agent, undefined, undefined),
        op: 'entity',
        entity: req.entity,
      };
      return new OneWrite(entry, (r) => {
        if (r.status === 'rejected') throw new ShardmindError(ErrorCode.BAD_REQUEST, r.error?.message ?? 'the entity was rejected');
        const entity = o.store.getEntity(req.entity.id);
        if (!entity) throw new ShardmindError(ErrorCode.INTERNAL, `entity ${req.entity.id} applied but not found`);
        return { v: 1, domain: o.domain, seq: r.seq, entity: toWireEntity(entity), ...(r.duplicate ? { duplicate: true } : {}) };
      });
    }
    case 'recall_batch':
      // Several recalls in one message, each answered as a lone recall would be (recall-batch.ts).
      return answerRecallBatch(parseRecallBatchRequest(body).items, encoding, o, served);
    case 'lookup': {
      const req = parseLookupRequest(body);
      const lookup = (): unknown => {
        const entity = o.store.getEntity(req.entity);
        if (!entity) throw new ShardmindError(ErrorCode.NOT_FOUND, `entity: no entity "${req.entity}" (by id or alias) in the ${o.domain} shard`);
        return { v: 1, domain: o.domain, entity: toWireEntity(entity) };
      };
      const wait = readWait(req.minSeq, o);
      return wait === undefined ? lookup() : wait.then(lookup);
    }
    case 'retract': {
      const req = parseRetractRequest(body);
      if (req.validTo !== undefined) refuseEndBeforeStart(o, req.factId, req.validTo);
      const entry: RetractEntry = {
        v: 1,
        opId: req.opId ?? newOpId(o),
        recordedAt: o.clock.now(),
        source: source(o, req.agent, undefined, undefined),
        op: 'retract',
        factId: req.factId,
        ...(req.validTo === undefined ? {} : { validTo: Date.parse(req.validTo) }),
      };
      return new OneWrite(entry, (r) => writeReply(o.domain, r));
    }
  }
}

/**
 * An entity write may not take a name another entity holds: a new entity whose id, or a new alias, is already
 * (case-insensitively) another entity's id or alias. Ids and aliases share one lower-cased lookup, so the alias
 * "Dana" of `dana-white` took over the id `dana`, and facts written about `dana` were stored about `dana-white`
 * (walkthrough session 12, F1; decisions §71). Refused here, before the append, at every log level (a valid entry
 * applies alike under every rule); a level-4 apply refuses the same, for two writes that race past this check.
 */
function refuseTakenNames(store: ShardStore, entity: { readonly id: string; readonly aliases?: readonly string[] | undefined }): void {
  const found = store.getEntity(entity.id);
  if (found !== undefined && found.id !== entity.id) throw badRequest('entity.id', `"${entity.id}" already names entity "${found.id}"`);
  const own = found?.aliases ?? [];
  const aliases = entity.aliases ?? [];
  for (let i = 0; i < aliases.length; i++) {
    const alias = aliases[i]!;
    if (own.includes(alias)) continue;
    const holder = store.getEntity(alias);
    if (holder !== undefined && holder.id !== entity.id) throw badRequest(`entity.aliases[${i}]`, `"${alias}" already names entity "${holder.id}"`);
  }
}

/**
 * A retraction may not end a fact before it began, as `remember` refuses `validTo` before `validFrom`: apply would
 * clamp it to `validFrom` and answer `retracted`, a silent change of what was asked. Checked here, before the append,
 * because it needs the stored fact; a fact's `validFrom` never changes once written, so the check cannot go stale.
 * A fact this leader has not applied yet (or none) is left to apply, which answers as it always did.
 */
function refuseEndBeforeStart(o: ShardServiceOptions, factId: string, validTo: string): void {
  const fact = o.store.getFact(factId);
  if (fact === undefined || fact.status === 'forgotten' || Date.parse(validTo) >= fact.validFrom) return;
  throw badRequest('validTo', `must not be before the fact's validFrom (${new Date(fact.validFrom).toISOString()}), got ${validTo}`);
}

/**
 * Before every read: the lease check, then read-your-writes. Undefined when neither has to wait (the common case:
 * the read runs at once), otherwise a promise that resolves when the read may run.
 */
function readWait(minSeq: Readonly<Record<string, number>> | undefined, o: ShardServiceOptions): Promise<void> | undefined {
  const seq = minSeq?.[o.domain];
  const gate = o.readGate?.();
  if (gate === undefined) return seq === undefined || seq <= o.position() ? undefined : o.waitForSeq(seq, o.minSeqWaitMs);
  return gate.then(() => (seq !== undefined && seq > o.position() ? o.waitForSeq(seq, o.minSeqWaitMs) : undefined));
}

function newOpId(o: ShardServiceOptions): string {
  return `${o.node}-${randomUUID()}`;
}

/** Who wrote it; the leader fills in its own node when the client named none. */
function source(o: ShardServiceOptions, agent: string, task: string | undefined, node: string | undefined): Source {
  const src: { agent: string; task?: string; node?: string } = { agent };
  if (task !== undefined) src.task = task;
  src.node = node ?? o.node;
  return src;
}
