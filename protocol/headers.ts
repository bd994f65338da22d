/**
 * Reading a received message's headers without letting a malformed header block throw out of a handler.
 *
 * nats.js decodes a message's headers lazily, on each access to `msg.headers` (the result is not kept when it
 * throws), and throws NatsError BAD_HEADER for a key holding a space or a non-ASCII character, or a value holding a
 * lone newline. nats-server forwards such headers unchanged, so any publisher can send them. Thrown inside a
 * subscription callback, the error ends nats.js's read loop: the connection stays open but reads nothing more, so
 * the process goes deaf. Inside an async handler it is an unhandled rejection, and Node exits. So every handler of a
 * request from outside reads headers through `readHeaders`, once, and answers BAD_REQUEST when they are malformed.
 */
import { ErrorCode, ShardmindError } from './errors.ts';

/** Headers as the handlers read them (nats.js's `MsgHdrs` satisfies it). */
export interface ReadableHeaders {
  get(key: string): string;
  readonly code?: number;
}

/** What `readHeaders` found: the headers (or none), or why they could not be read. */
export type HeadersRead<H> = { readonly ok: true; readonly headers: H | undefined } | { readonly ok: false; readonly error: ShardmindError };

/** `msg.headers`, or a BAD_REQUEST error saying why they could not be decoded. Never throws. */
export function readHeaders<H>(msg: { readonly headers?: H }): HeadersRead<H> {
  try {
    return { ok: true, headers: msg.headers };
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    return { ok: false, error: new ShardmindError(ErrorCode.BAD_REQUEST, `the message's headers are malformed: ${why}`, { cause }) };
  }
}

/** `msg.headers`, or undefined when they cannot be decoded: for replies, where a bad header just means none. */
export function headersOrNone<H>(msg: { readonly headers?: H }): H | undefined {
  const read = readHeaders(msg);
  return read.ok ? read.headers : undefined;
}
