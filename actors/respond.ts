/**
 * Replies in the request's encoding: JSON when it said `content-type: application/json`, msgpack otherwise.
 * Never throws: a body that cannot be encoded is answered with an INTERNAL error, one over the server's
 * `max_payload` with TOO_LARGE, and a reply that cannot be sent (the connection is closing) is dropped — the
 * caller's retry covers it. Request handlers call this from NATS
 * callbacks and detached promises, where a throw would take the host down.
 */
import { headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection } from 'nats';
import {
  CONTENT_TYPE_HEADER,
  ErrorCode,
  JSON_CONTENT_TYPE,
  REFUSAL_CODES,
  REPLY_TO_HEADER,
  ROUTER_NODE_HEADER,
  ShardmindError,
  encodePayload,
  encodingOf,
  errorReply,
  headersOrNone,
  isErrorReply,
  isPayloadTooLarge,
  isInboxSubject,
  maxPayloadOf,
  ReplySubjectCheck,
  replyTooLarge,
  type Encoding,
} from '../protocol/index.ts';

/**
 * Sends the reply (in `encoding` when the caller already read it from the request; msgpack when the request's headers
 * cannot be read); false when it could not be sent. A body that is already bytes (a recall's msgpack, written
 * straight from the store) is sent as it is.
 */
export function respond(msg: Msg, body: unknown, encoding: Encoding = encodingOf(headersOrNone(msg))): boolean {
  const json = encoding === 'json';
  let data: Uint8Array;
  try {
    data = body instanceof Uint8Array ? body : encodePayload(body, json ? 'json' : 'msgpack');
  } catch (err) {
    const e = new ShardmindError(ErrorCode.INTERNAL, `the reply could not be encoded: ${(err as Error).message}`);
    data = encodePayload(errorReply(e), json ? 'json' : 'msgpack');
  }
  try {
    return sendReply(msg, data, json);
  } catch (err) {
    return isPayloadTooLarge(err) && sendTooLarge((bytes) => sendReply(msg, bytes, json), data.length, maxPayloadOf(msg), encoding);
  }
}

/**
 * The reply's bytes on the request's reply subject, with the JSON content-type when the request was JSON. A function of
 * its own rather than a closure per reply: tsx keeps function names, so each named closure cost a `defineProperty`.
 */
function sendReply(msg: Msg, bytes: Uint8Array, json: boolean): boolean {
  if (!json) return msg.respond(bytes);
  const h = natsHeaders();
  h.set(CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE);
  return msg.respond(bytes, { headers: h });
}

/**
 * Answers TOO_LARGE in place of a reply over the server's `max_payload` (nats.js refused to publish it): without
 * this the caller saw only a TIMEOUT, and retried. Never throws.
 */
function sendTooLarge(send: (bytes: Uint8Array) => boolean, bytes: number, maxPayload: number | undefined, encoding: Encoding): boolean {
  try {
    return send(encodePayload(errorReply(replyTooLarge(bytes, maxPayload)), encoding));
  } catch {
    return false;
  }
}

/**
 * The reply-subject check of every service of this process that an agent can reach (shards, replicas, the shard
 * guard, step-down responders): one count for the process, reported to stderr, the host's log, at most every 10 s.
 */
const outsideReplies = new ReplySubjectCheck('shardmind host', (line) => void process.stderr.write(`${new Date().toISOString()} ${line}\n`));

/** Requests this process's shard services left unanswered because they named a reply subject that is not an inbox. */
export function unansweredForReplySubject(): number {
  return outsideReplies.count;
}

/**
 * Whether a request from outside may be answered (protocol/reply-subject.ts, decisions §69): its reply subject, and
 * its `sm-reply-to` if it names one, are client inboxes. Otherwise the request is dropped unhandled, counted and
 * reported: a host answering it would publish, with the host's permissions, wherever the sender said. `h` is the
 * request's headers as the handler read them once (undefined when they could not be read).
 */
export function answerable(msg: Msg, h: MsgHdrs | undefined): boolean {
  return outsideReplies.admits(msg.subject, msg.reply) && (h === undefined || outsideReplies.admits(msg.subject, h.get(REPLY_TO_HEADER), REPLY_TO_HEADER));
}

/** Where a handed-off request's answer goes (protocol/hand-off.ts): the agent's subject, with the router's name. */
export interface HandOff {
  readonly to: string;
  readonly headers: MsgHdrs;
}

/** Reply headers per (router node, encoding): a few routers in a cluster, so a small cache, never rebuilt per reply. */
const handOffHeaders = new Map<string, MsgHdrs>();

/**
 * The hand-off a request asks for, or undefined when it asks for none or for one that cannot be honoured (a
 * malformed `sm-reply-to` is ignored: the answer then goes to the request's own reply subject, as without it).
 * `h` is the request's headers as the handler read them once (`readHeaders`): nats.js throws on each read of
 * headers it cannot decode.
 */
export function handOffOf(h: MsgHdrs | undefined, encoding: Encoding): HandOff | undefined {
  if (h === undefined) return undefined;
  const to = h.get(REPLY_TO_HEADER);
  // `answerable` has already refused a request whose sm-reply-to is not an inbox; this holds for any other caller.
  if (to === '' || !isInboxSubject(to)) return undefined;
  const node = h.get(ROUTER_NODE_HEADER).slice(0, 128);
  const key = `${encoding}\u0000${node}`;
  let headers = handOffHeaders.get(key);
  if (headers === undefined) {
    headers = natsHeaders();
    if (node !== '') headers.set(ROUTER_NODE_HEADER, node);
    if (encoding === 'json') headers.set(CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE);
    if (handOffHeaders.size >= 64) handOffHeaders.clear();
    handOffHeaders.set(key, headers);
  }
  return { to, headers };
}

/**
 * `respond`, for a request that may have been handed off: the answer goes to the agent, except a refusal, which
 * goes back to the router that asked so that it retries. Never throws.
 */
export function respondHandedOff(nc: NatsConnection, msg: Msg, body: unknown, encoding: Encoding, handOff: HandOff | undefined): boolean {
  if (handOff === undefined || (isErrorReply(body) && REFUSAL_CODES.has(body.error.code))) return respond(msg, body, encoding);
  let data: Uint8Array;
  try {
    data = body instanceof Uint8Array ? body : encodePayload(body, encoding);
  } catch (err) {
    const e = new ShardmindError(ErrorCode.INTERNAL, `the reply could not be encoded: ${(err as Error).message}`);
    data = encodePayload(errorReply(e), encoding);
  }
  try {
    nc.publish(handOff.to, data, { headers: handOff.headers });
    return true;
  } catch (err) {
    const send = (bytes: Uint8Array): boolean => (nc.publish(handOff.to, bytes, { headers: handOff.headers }), true);
    return isPayloadTooLarge(err) && sendTooLarge(send, data.length, nc.info?.max_payload, encoding);
  }
}
