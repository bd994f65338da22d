/**
 * Replica reads: what every replica of a shard — followers and the leader — answers on `sm.replica.<domain>.<op>`
 * (recall, get, history; one queue group per domain, so each request is answered once, by whichever replica NATS
 * picks) and on `sm.replica.<domain>.<op>.<node>` (this node's replica only: how a caller reads from its own Mini —
 * nats-server 2.9 picks queue subscribers at random across the cluster, not the one on the caller's server).
 *
 * A request says how stale its answer may be (`maxStaleMs`, default `limits.replicaMaxStaleMs`) and may carry
 * `minSeq` (read-your-writes). A replica whose staleness bound (`freshness.ts`; 0 for a leader whose lease holds)
 * is within `maxStaleMs` waits for `minSeq` (bounded, then TIMEOUT) and answers from its LMDB, adding `servedBy`
 * and `staleMs` to the reply. One that is too stale does not answer from old state: it passes the request, bytes
 * and headers unchanged plus `sm-replica-forwarded-by`, to the leader's subject with the client's reply subject,
 * so the client still gets exactly one answer, from the leader (or the leader's refusals, as for a direct read).
 * A router's hand-off (`sm-reply-to`, protocol/hand-off.ts) is honoured as the leader honours it, and travels with
 * a forwarded request.
 */
import { headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from 'nats';
import {
  ErrorCode,
  REPLICA_FORWARD_HEADER,
  REPLICA_OPS,
  ShardmindError,
  checkSize,
  decodePayload,
  encodingOf,
  replyEncodingAfter,
  errorReply,
  isReplicaOp,
  readHeaders,
  replicaNodeSubject,
  replicaQueue,
  replicaSubject,
  shardSubject,
  type Encoding,
} from '../protocol/index.ts';
import { detached, guarded, ReportThrottle } from './guarded.ts';
import { answerable, handOffOf, respond as respondPlain, respondHandedOff } from './respond.ts';
import { onWire, parseRead, runRead, type ReadContext, type ReadRequest } from './shard-reads.ts';

export interface ReplicaServiceOptions extends ReadContext {
  readonly node: string;
  readonly maxPayloadBytes: number;
  readonly minSeqWaitMs: number;
  /** `maxStaleMs` when a request does not say. */
  readonly defaultMaxStaleMs: number;
  /** This replica's staleness bound now, ms: 0 for a serving leader, `Infinity` when unknown. */
  staleness(): number;
  /**
   * The leader's lease check, as for its own reads: undefined when it may answer now, else a promise that resolves
   * once it may or rejects (NOT_LEADER). Followers have none.
   */
  readGate?(): Promise<void> | undefined;
  /** Resolves once this replica has applied `seq`, or rejects with TIMEOUT. */
  waitForSeq(seq: number, timeoutMs: number): Promise<void>;
  onInternalError(err: unknown, op: string): void;
}

/**
 * Subscribes this replica to `sm.replica.<domain>.*` (the domain's queue group) and `sm.replica.<domain>.*.<node>`;
 * drain both to stop. The node subject is in a queue group of its own too, so that while one role's subscription
 * drains and the next one's starts, a request is still answered once.
 */
export function serveReplica(nc: NatsConnection, o: ReplicaServiceOptions): Subscription[] {
  // What the guard catches is a bug (a request that escaped every error reply): the actor's log, throttled.
  const throttle = new ReportThrottle((err, where) => o.onInternalError(err, where));
  const callback = guarded(`replica ${o.domain}`, (msg) => answer(nc, msg, o, throttle), throttle);
  return [
    nc.subscribe(replicaSubject(o.domain, '*'), { queue: replicaQueue(o.domain), callback }),
    nc.subscribe(replicaNodeSubject(o.domain, '*', o.node), { queue: `${replicaQueue(o.domain)}-${o.node}`, callback }),
  ];
}

/** Passed on to the leader: the caller's answer comes from there. */
const FORWARDED = Symbol('forwarded');

function answer(nc: NatsConnection, msg: Msg, o: ReplicaServiceOptions, throttle: ReportThrottle): void {
  // Headers are read once, here: nats.js throws on every read of a header block it cannot decode.
  const read = readHeaders(msg);
  // Only inboxes are answered, or forwarded to (decisions §69): a follower publishes as `host` too.
  if (!answerable(msg, read.ok ? read.headers : undefined)) return;
  if (!read.ok) {
    if (msg.reply) respondPlain(msg, errorReply(read.error), 'msgpack');
    return;
  }
  let encoding = encodingOf(read.headers);
  const handOff = handOffOf(read.headers, encoding);
  const respond = (m: Msg, body: unknown, e: Encoding): boolean => respondHandedOff(nc, m, body, e, handOff);
  // sm.replica.<domain>.<op>[.<node>]
  const op = msg.subject.split('.', 4)[3] ?? '';
  let reply: unknown;
  try {
    reply = handle(nc, msg, read.headers, op, encoding, o);
  } catch (err) {
    reply = failure(err, op, o);
    encoding = replyEncodingAfter(err, encoding);
  }
  if (reply === FORWARDED) return;
  if (reply instanceof Promise) {
    const answered = reply.then(
      (body: unknown) => void (body !== FORWARDED && msg.reply && respond(msg, onWire(body, encoding), encoding)),
      (err: unknown) => void (msg.reply && respond(msg, failure(err, op, o), encoding)),
    );
    detached(answered, `replica ${o.domain} ${op}`, throttle);
  } else if (msg.reply) {
    respond(msg, onWire(reply, encoding), encoding);
  }
}

function failure(err: unknown, op: string, o: ReplicaServiceOptions): unknown {
  if (!(err instanceof ShardmindError) || err.code === ErrorCode.INTERNAL) o.onInternalError(err, op);
  return errorReply(err);
}

/** The reply, FORWARDED, or a promise of either. Throws bad requests (answered here: forwarding cannot fix them). */
function handle(nc: NatsConnection, msg: Msg, h: MsgHdrs | undefined, op: string, encoding: Encoding, o: ReplicaServiceOptions): unknown {
  checkSize(msg.data, o.maxPayloadBytes);
  if (!isReplicaOp(op)) {
    throw new ShardmindError(ErrorCode.BAD_REQUEST, `unknown op "${op}": a replica serves ${REPLICA_OPS.join(', ')}; writes go to sm.shard.${o.domain}.<op>`);
  }
  const read = parseRead(op, decodePayload(msg.data, encoding));
  const maxStaleMs = read.req.maxStaleMs ?? o.defaultMaxStaleMs;
  if (o.staleness() > maxStaleMs) return forward(nc, msg, h, op, o);
  const seq = read.req.minSeq?.[o.domain];
  const gate = o.readGate?.();
  const needsSeq = seq !== undefined && seq > o.position();
  if (gate === undefined && !needsSeq) return readNow(nc, msg, h, read, maxStaleMs, o);
  const ready = (gate ?? Promise.resolve()).then(() => (needsSeq ? o.waitForSeq(seq, o.minSeqWaitMs) : undefined));
  // The bound is checked again once the wait is over: it grows while a replica waits.
  return ready.then(() => readNow(nc, msg, h, read, maxStaleMs, o));
}

/** Answers from this replica's store if it is still fresh enough, else passes the request to the leader. */
function readNow(nc: NatsConnection, msg: Msg, h: MsgHdrs | undefined, read: ReadRequest, maxStaleMs: number, o: ReplicaServiceOptions): unknown {
  const staleMs = o.staleness();
  if (staleMs > maxStaleMs) return forward(nc, msg, h, read.op, o);
  const served = { servedBy: o.node, staleMs: Math.ceil(staleMs) };
  try {
    return runRead(read, o, served);
  } catch (err) {
    // "No such fact" is an answer about the data: it says who gave it and how stale, as a found fact does.
    if (err instanceof ShardmindError && err.code === ErrorCode.NOT_FOUND) return { ...errorReply(err), ...served };
    throw err;
  }
}

/**
 * Republishes the request to the leader's subject with the caller's reply subject: the leader answers the caller
 * directly (or its step-down responder or the shard guard refuses, retryably, as for a direct read).
 */
function forward(nc: NatsConnection, msg: Msg, received: MsgHdrs | undefined, op: string, o: ReplicaServiceOptions): typeof FORWARDED {
  if (!msg.reply) return FORWARDED;
  const h = natsHeaders();
  if (received) for (const [k, vs] of received) for (const v of vs) h.append(k, v);
  h.set(REPLICA_FORWARD_HEADER, o.node);
  try {
    nc.publish(shardSubject(o.domain, op), msg.data, { reply: msg.reply, headers: h });
  } catch (err) {
    // The connection is closing: the caller's retry (a timeout) covers it, as for any reply that cannot be sent.
    o.onInternalError(err, `${op} (forward to the leader)`);
  }
  return FORWARDED;
}
