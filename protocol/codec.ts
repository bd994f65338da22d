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
    const what = encoding === 'json' ? 'JSON' : 'msgpack (send content-type: application/json for JSON)';
    throw new ShardmindError(ErrorCode.BAD_REQUEST, `payload is not valid ${what}: ${(cause as Error).message}`, {
      cause,
    });
  }
}

/** The encoding a request asked for, from its headers. */
export function encodingOf(headers: { get(k: string): string } | undefined): Encoding {
  const ct = headers?.get(CONTENT_TYPE_HEADER) ?? '';
  return ct.toLowerCase().startsWith(JSON_CONTENT_TYPE) ? 'json' : 'msgpack';
}
