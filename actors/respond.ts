/**
 * Replies in the request's encoding: JSON when it said `content-type: application/json`, msgpack otherwise.
 * Never throws: a body that cannot be encoded is answered with an INTERNAL error, and a reply that cannot be sent
 * (the connection is closing) is dropped — the caller's retry covers it. Request handlers call this from NATS
 * callbacks and detached promises, where a throw would take the host down.
 */
import { headers as natsHeaders, type Msg } from 'nats';
import {
  CONTENT_TYPE_HEADER,
  ErrorCode,
  JSON_CONTENT_TYPE,
  ShardmindError,
  encodePayload,
  encodingOf,
  errorReply,
  type Encoding,
} from '../protocol/index.ts';

/**
 * Sends the reply (in `encoding` when the caller already read it from the request); false when it could not be
 * sent. A body that is already bytes (a recall's msgpack, written straight from the store) is sent as it is.
 */
export function respond(msg: Msg, body: unknown, encoding: Encoding = encodingOf(msg.headers)): boolean {
  const json = encoding === 'json';
  let data: Uint8Array;
  try {
    data = body instanceof Uint8Array ? body : encodePayload(body, json ? 'json' : 'msgpack');
  } catch (err) {
    const e = new ShardmindError(ErrorCode.INTERNAL, `the reply could not be encoded: ${(err as Error).message}`);
    data = encodePayload(errorReply(e), json ? 'json' : 'msgpack');
  }
  try {
    if (json) {
      const h = natsHeaders();
      h.set(CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE);
      return msg.respond(data, { headers: h });
    }
    return msg.respond(data);
  } catch {
    return false;
  }
}
