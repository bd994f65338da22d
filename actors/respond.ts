/** Replies in the request's encoding: JSON when it said `content-type: application/json`, msgpack otherwise. */
import { headers as natsHeaders, type Msg } from 'nats';
import { CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE, encodePayload, encodingOf } from '../protocol/index.ts';

export function respond(msg: Msg, body: unknown): void {
  if (encodingOf(msg.headers) === 'json') {
    const h = natsHeaders();
    h.set(CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE);
    msg.respond(encodePayload(body, 'json'), { headers: h });
  } else {
    msg.respond(encodePayload(body, 'msgpack'));
  }
}
