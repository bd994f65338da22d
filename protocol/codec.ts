/**
 * Payload encoding. msgpack by default; JSON when the request carries `content-type: application/json`, and the
 * reply then is JSON too, so a person can poke the cluster with the `nats` CLI.
 */
import { Packr } from 'msgpackr';
import { ErrorCode, ShardmindError } from './errors.ts';

/** `useRecords: false` keeps the bytes plain msgpack that any language's library reads. */
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false, int64AsType: 'number' });

export type Encoding = 'msgpack' | 'json';

export const JSON_CONTENT_TYPE = 'application/json';
export const CONTENT_TYPE_HEADER = 'content-type';

const textDecoder = new TextDecoder('utf-8', { fatal: true });
const textEncoder = new TextEncoder();

export function encodePayload(value: unknown, encoding: Encoding): Uint8Array {
  return encoding === 'json' ? textEncoder.encode(JSON.stringify(value)) : packr.pack(value);
}

/** Decodes a request body; malformed bytes become BAD_REQUEST, never a crash. */
export function decodePayload(data: Uint8Array, encoding: Encoding): unknown {
  if (data.length === 0) throw new ShardmindError(ErrorCode.BAD_REQUEST, 'empty payload: expected a msgpack or JSON object');
  try {
    if (encoding === 'json') return JSON.parse(textDecoder.decode(data));
    return packr.unpack(data);
  } catch (cause) {
    // A msgpack request is a map, so it never starts with `{` (the integer 123): this is a JSON client that forgot
    // the header, or spelled its value otherwise. It reads JSON only, so the refusal goes out in JSON.
    if (encoding === 'msgpack' && data[0] === OPEN_BRACE) {
      throw new UnlabelledJsonError(
        ErrorCode.BAD_REQUEST,
        `payload: looks like JSON, but the request has no "content-type: ${JSON_CONTENT_TYPE}" header, so it was read as msgpack; send that header with JSON bodies`,
        { cause },
      );
    }
    const what = encoding === 'json' ? 'JSON' : 'msgpack (send content-type: application/json for JSON)';
    throw new ShardmindError(ErrorCode.BAD_REQUEST, `payload is not valid ${what}: ${(cause as Error).message}`, {
      cause,
    });
  }
}

const OPEN_BRACE = 0x7b;

/** A JSON body sent without the JSON content type: its BAD_REQUEST is answered in JSON (`replyEncodingAfter`). */
export class UnlabelledJsonError extends ShardmindError {}

/** The encoding of the error reply to a request that failed with `err`: the request's, or JSON for unlabelled JSON. */
export function replyEncodingAfter(err: unknown, encoding: Encoding): Encoding {
  return err instanceof UnlabelledJsonError ? 'json' : encoding;
}

/**
 * The encoding a request asked for, from its headers. Header names are case-insensitive (`Content-Type` is what
 * HTTP habits and MIME-canonicalising clients send). One pass over the names, as nats.js's exact `get` makes: a
 * msgpack request with headers but no content type (every recall a router hands to a shard) costs what it did
 * (~70 ns), where an exact `get` then a `Match.IgnoreCase` one cost three times that.
 */
export function encodingOf(headers: { get(k: string): string; keys(): string[] } | undefined): Encoding {
  if (headers === undefined) return 'msgpack';
  for (const name of headers.keys()) {
    if (name.length === CONTENT_TYPE_HEADER.length && (name === CONTENT_TYPE_HEADER || name.toLowerCase() === CONTENT_TYPE_HEADER)) {
      return headers.get(name).toLowerCase().startsWith(JSON_CONTENT_TYPE) ? 'json' : 'msgpack';
    }
  }
  return 'msgpack';
}
