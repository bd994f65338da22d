/**
 * A reply too big for the server. nats.js refuses to publish a payload over the server's `max_payload` (1 MiB by
 * default) by throwing; a reply dropped there left the caller waiting for a TIMEOUT it then retried, each retry
 * recomputing the same oversized answer. Whoever publishes replies answers instead with this coded error, which is
 * small, says how big the answer was and what to ask for.
 */
import { ErrorCode as NatsErrorCode, type Msg } from 'nats';
import { ErrorCode, ShardmindError } from './errors.ts';

/** Whether `err` is nats.js's refusal of a payload over the server's `max_payload`. */
export function isPayloadTooLarge(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === NatsErrorCode.MaxPayloadExceeded;
}

/**
 * The server's `max_payload` as the connection that delivered `msg` learned it. nats.js keeps it on the message's
 * publisher (not in its types); undefined when that is not there, and the message then names no figure.
 */
export function maxPayloadOf(msg: Msg): number | undefined {
  const bound = (msg as unknown as { publisher?: { info?: { max_payload?: unknown } } }).publisher?.info?.max_payload;
  return typeof bound === 'number' ? bound : undefined;
}

/** TOO_LARGE (not retryable: the same request gets the same answer) for a reply of `bytes` over `maxPayload`. */
export function replyTooLarge(bytes: number, maxPayload: number | undefined): ShardmindError {
  const bound = maxPayload === undefined ? "the server's max_payload" : `the server's max_payload of ${maxPayload} bytes`;
  return new ShardmindError(
    ErrorCode.TOO_LARGE,
    `reply: ${bytes} bytes is over ${bound}, so it cannot be sent; ask for fewer facts (a smaller limit; history pages with limit and before)`,
  );
}
