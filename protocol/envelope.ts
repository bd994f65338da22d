/**
 * The reply envelope, both ends: a server turns any thrown error into `{ v: 1, error: { code, message, retryable } }`;
 * a client turns such a body back into a thrown `ShardmindError` and anything else into the typed reply.
 */
import { ErrorCode, ShardmindError, toWireError } from './errors.ts';
import { isRecord } from './fields.ts';
import type { ErrorReply } from './wire.ts';

/** The error reply for anything thrown while serving a request. Unknown errors become INTERNAL. */
export function errorReply(err: unknown): ErrorReply {
  return { v: 1, error: toWireError(err) };
}

/** Whether a decoded reply body is an error envelope. */
export function isErrorReply(body: unknown): body is ErrorReply {
  return isRecord(body) && isRecord(body['error']) && typeof body['error']['code'] === 'string';
}

/**
 * A decoded reply as `T`, or its error thrown as `ShardmindError`. Only the envelope is checked: replies come from
 * our own servers, so their fields are trusted (the edge guards requests, not replies).
 */
export function unwrapReply<T>(body: unknown): T {
  if (isErrorReply(body)) {
    const e = body.error;
    throw ShardmindError.fromWire({
      code: e.code as ErrorCode,
      message: String(e.message),
      retryable: Boolean(e.retryable),
    });
  }
  if (!isRecord(body) || body['v'] !== 1) {
    throw new ShardmindError(ErrorCode.INTERNAL, 'reply is not a v1 shardmind body');
  }
  return body as T;
}
