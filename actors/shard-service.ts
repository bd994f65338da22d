/**
 * What a shard leader answers on `sm.shard.<domain>.<op>`: size check before decoding, decode (msgpack, or JSON
 * when asked), validate at the edge, then either turn the request into a log entry for the write pipeline
 * (remember, forget, retract) or read LMDB (recall, get, history — after waiting for `minSeq`). Every request gets
 * a reply in the request's encoding; every error becomes an error reply, never a crash.
 *
 * The subscription has no queue group on purpose: if an old leader is paused and a new one serves, both get each
 * request, and the paused one cannot swallow it.
 */
import { randomUUID } from 'node:crypto';
import type { Msg, NatsConnection, Subscription } from 'nats';
import { respond } from './respond.ts';
import {
  ErrorCode,
  ShardmindError,
  checkSize,
  decodePayload,
  encodingOf,
  errorReply,
  isShardOp,
  parseForgetRequest,
  parseGetRequest,
  parseHistoryRequest,
  parseRecallRequest,
  parseRememberRequest,
  parseRetractRequest,
  rememberReply,
  shardSubject,
  toFactInput,
  toRecallQuery,
  toWireFact,
  writeReply,
  SHARD_OPS,
  type Encoding,
} from '../protocol/index.ts';
import type { ApplyResult, LogEntry, ShardStore, Source } from '../shards/index.ts';
import type { Clock } from './clock.ts';

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
  /** Resolves once this replica has applied `seq`, or rejects with TIMEOUT. */
  waitForSeq(seq: number, timeoutMs: number): Promise<void>;
  /** The sequence reads reflect. */
  position(): number;
  /** Resolves when this leader may answer reads (its lease holds); rejects with NOT_LEADER otherwise. */
  readGate?(): Promise<void>;
  onInternalError(err: unknown, op: string): void;
}

/** Subscribes the leader to its shard's subjects; `unsubscribe()` on the result stops intake. */
export function serveShard(nc: NatsConnection, o: ShardServiceOptions): Subscription {
  return nc.subscribe(shardSubject(o.domain, '*'), {
    callback: (err, msg) => {
      if (err) return;
      void answer(msg, o);
    },
  });
}

async function answer(msg: Msg, o: ShardServiceOptions): Promise<void> {
  const encoding = encodingOf(msg.headers);
  const op = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
  let reply: unknown;
  try {
    reply = await handle(op, msg.data, encoding, o);
  } catch (err) {
    if (!(err instanceof ShardmindError) || err.code === ErrorCode.INTERNAL) o.onInternalError(err, op);
    reply = errorReply(err);
  }
  if (msg.reply) respond(msg, reply);
}

/** One request, decoded and answered. Exported for actor-level tests that bypass NATS. */
export async function handle(op: string, data: Uint8Array, encoding: Encoding, o: ShardServiceOptions): Promise<unknown> {
  checkSize(data, o.maxPayloadBytes);
  if (!isShardOp(op)) {
    throw new ShardmindError(ErrorCode.BAD_REQUEST, `unknown op "${op}": a shard serves ${SHARD_OPS.join(', ')}`);
  }
  const body = decodePayload(data, encoding);
  switch (op) {
    case 'remember': {
      const req = parseRememberRequest(body);
      if (req.domain !== undefined && req.domain !== o.domain) {
        throw new ShardmindError(ErrorCode.BAD_REQUEST, `domain: this is the "${o.domain}" shard, the request names "${req.domain}"`);
      }
      const r = await o.submit({
        ...entryBase(o, req.opId, { agent: req.agent, task: req.task, node: req.node }),
        op: 'assert',
        fact: toFactInput(req.fact),
      });
      return rememberReply(o.domain, r);
    }
    case 'forget': {
      const req = parseForgetRequest(body);
      const r = await o.submit({ ...entryBase(o, req.opId, { agent: req.agent }), op: 'forget', factId: req.factId });
      return writeReply(o.domain, r);
    }
    case 'retract': {
      const req = parseRetractRequest(body);
      const validTo = req.validTo === undefined ? undefined : Date.parse(req.validTo);
      const r = await o.submit({
        ...entryBase(o, req.opId, { agent: req.agent }),
        op: 'retract',
        factId: req.factId,
        ...(validTo === undefined ? {} : { validTo }),
      });
      return writeReply(o.domain, r);
    }
    case 'recall': {
      const req = parseRecallRequest(body);
      await waitMinSeq(req.minSeq, o);
      const result = o.store.recall(toRecallQuery(req, o.clock.now(), o.maxRecallLimit));
      return {
        v: 1,
        domains: [o.domain],
        facts: result.facts.map((f) => toWireFact(f)),
        seqs: { [o.domain]: Math.max(result.appliedSeq, o.position()) },
      };
    }
    case 'get': {
      const req = parseGetRequest(body);
      await waitMinSeq(req.minSeq, o);
      const fact = o.store.getFact(req.factId);
      if (!fact) throw new ShardmindError(ErrorCode.NOT_FOUND, `factId: no fact "${req.factId}" in the ${o.domain} shard`);
      return { v: 1, domain: o.domain, fact: toWireFact(fact) };
    }
    case 'history': {
      const req = parseHistoryRequest(body);
      await waitMinSeq(req.minSeq, o);
      return { v: 1, domain: o.domain, facts: o.store.history(req.subject, req.predicate).map((f) => toWireFact(f)) };
    }
  }
}

/** Before every read: the lease check, then read-your-writes. */
async function waitMinSeq(minSeq: Readonly<Record<string, number>> | undefined, o: ShardServiceOptions): Promise<void> {
  await o.readGate?.();
  const seq = minSeq?.[o.domain];
  if (seq !== undefined && seq > o.position()) await o.waitForSeq(seq, o.minSeqWaitMs);
}

/** The fields every write entry carries; the leader stamps `recordedAt`, and makes an opId if the client sent none. */
function entryBase(o: ShardServiceOptions, opId: string | undefined, source: { agent: string; task?: string | undefined; node?: string | undefined }) {
  const src: { agent: string; task?: string; node?: string } = { agent: source.agent };
  if (source.task !== undefined) src.task = source.task;
  src.node = source.node ?? o.node;
  return { v: 1 as const, opId: opId ?? `${o.node}-${randomUUID()}`, recordedAt: o.clock.now(), source: src as Source };
}
