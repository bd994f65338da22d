/**
 * Bytes at rest. Values are msgpack without records (`useRecords: false`): records make the bytes depend on which
 * structures a process happened to see first, and replicas must hold byte-identical data. Objects are always built
 * with their fields in one fixed order (see `records.ts`), so equal content gives equal bytes.
 *
 * Posting blocks are a flat run of 8-byte postings, ascending by sequence: seq (6 bytes, big-endian), term
 * frequency (1 byte), document length in terms (1 byte). Both counts saturate at 255; BM25 does not care beyond.
 */
import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false, moreTypes: false, encodeUndefinedAsNil: false });

export function encodeValue(value: unknown): Buffer {
  return packr.pack(value);
}

export function decodeValue<T>(bytes: Uint8Array): T {
  return packr.unpack(bytes) as T;
}

export const POSTING_BYTES = 8;

/** Postings in memory: flat triples `[seq, tf, len, seq, tf, len, …]`, ascending by seq. */
export type PostingRun = number[];

export function encodePostings(run: readonly number[]): Buffer {
  const n = run.length / 3;
  const out = Buffer.allocUnsafe(n * POSTING_BYTES);
  for (let i = 0; i < n; i++) {
    const at = i * POSTING_BYTES;
    out.writeUIntBE(run[i * 3]!, at, 6);
    out[at + 6] = Math.min(255, run[i * 3 + 1]!);
    out[at + 7] = Math.min(255, run[i * 3 + 2]!);
  }
  return out;
}

export function decodePostings(bytes: Uint8Array): PostingRun {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Math.floor(buf.length / POSTING_BYTES);
  const run: number[] = new Array(n * 3);
  for (let i = 0; i < n; i++) {
    const at = i * POSTING_BYTES;
    run[i * 3] = buf.readUIntBE(at, 6);
    run[i * 3 + 1] = buf[at + 6]!;
    run[i * 3 + 2] = buf[at + 7]!;
  }
  return run;
}
