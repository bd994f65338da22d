/**
 * How a merged segment's posting blocks sit in the `blocks` table: small blocks packed into buckets, large ones
 * under their own key.
 *
 * Why: one LMDB put per (segment, term) was ~1.2 puts per fact loaded (most terms of a segment — subject+predicate
 * pairs, rare words — have one or two postings), ~1 µs each through lmdb-js even as appends. Packed, a segment is
 * at most BUCKETS bucket puts plus one per large block. The price for a reader is a bucket's bytes copied per
 * lookup (a few hundred bytes to a few KB) and a short scan of its directory.
 *
 * Keys (binary, ascending in the order a merge writes them, so every put is an LMDB append):
 * - bucket: segment (u32 BE), 0, bucket (u16 BE) — the bucket is the top BUCKET_BITS bits of the term's h1;
 * - large block: segment (u32 BE), 1, h1, h2, shape (u32 BE each) — the term's identity (`hashTerm`).
 *
 * A bucket's value: u32 BE entry count, then per term in identity order 16 bytes — h1, h2, shape, postings (u32 BE
 * each; LARGE when the block has its own key) — then the postings of its small blocks in entry order (8 bytes each,
 * see `codec.ts`). Every term of the segment has an entry in its bucket, so a term absent from the bucket is absent
 * from the segment: a miss costs one lookup.
 */
export const BUCKET_BITS = 12;
const BUCKET_SHIFT = 32 - BUCKET_BITS;
/** Blocks with more postings than this get their own key (copying them with a bucket would slow other terms). */
export const LARGE_POSTINGS = 32;
export const LARGE = 0xffffffff;
export const BUCKET_KEY_BYTES = 7;
export const LARGE_KEY_BYTES = 17;
const ENTRY_BYTES = 16;
const HEADER_BYTES = 4;

export const bucketOf = (h1: number): number => h1 >>> BUCKET_SHIFT;

export function writeBucketKey(out: Uint8Array, at: number, segment: number, bucket: number): number {
  writeU32(out, at, segment);
  out[at + 4] = 0;
  out[at + 5] = bucket >>> 8;
  out[at + 6] = bucket;
  return at + BUCKET_KEY_BYTES;
}

export function writeLargeKey(out: Uint8Array, at: number, segment: number, h1: number, h2: number, shape: number): number {
  writeU32(out, at, segment);
  out[at + 4] = 1;
  writeU32(out, at + 5, h1);
  writeU32(out, at + 9, h2);
  writeU32(out, at + 13, shape);
  return at + LARGE_KEY_BYTES;
}

export function writeU32(out: Uint8Array, at: number, x: number): void {
  out[at] = x >>> 24;
  out[at + 1] = x >>> 16;
  out[at + 2] = x >>> 8;
  out[at + 3] = x;
}

export function readU32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

export const bucketBytes = (entries: number, postingBytes: number): number => HEADER_BYTES + entries * ENTRY_BYTES + postingBytes;
export const entryAt = (i: number): number => HEADER_BYTES + i * ENTRY_BYTES;
export const postingsStart = (entries: number): number => HEADER_BYTES + entries * ENTRY_BYTES;

/** Where a term's postings are in a bucket (`find`'s answer; one instance reused, reads are synchronous). */
export interface BucketHit {
  /** The term's entry index, or -1 when the bucket has none (the term is not in the segment). */
  entry: number;
  /** LARGE: the block has its own key. Else the postings' byte range in the bucket. */
  start: number;
  end: number;
}

/** Finds the term with identity (h1, h2, shape) in a bucket's bytes. */
export function findInBucket(bucket: Uint8Array, h1: number, h2: number, shape: number, hit: BucketHit): BucketHit {
  const n = readU32(bucket, 0);
  let offset = postingsStart(n);
  const u1 = h1 >>> 0;
  const u2 = h2 >>> 0;
  const us = shape >>> 0;
  for (let i = 0; i < n; i++) {
    const at = entryAt(i);
    const count = readU32(bucket, at + 12);
    const bytes = count === LARGE ? 0 : count * 8;
    if (readU32(bucket, at) === u1 && readU32(bucket, at + 4) === u2 && readU32(bucket, at + 8) === us) {
      hit.entry = i;
      hit.start = count === LARGE ? LARGE : offset;
      hit.end = offset + bytes;
      return hit;
    }
    offset += bytes;
  }
  hit.entry = -1;
  return hit;
}

/**
 * The bucket without posting `[start, end)` of entry `entry` (8 bytes at `at`): forget. The entry goes when its
 * last posting does; undefined when the bucket is then empty.
 */
export function bucketWithout(bucket: Uint8Array, entry: number, at: number): Buffer | undefined {
  const n = readU32(bucket, 0);
  const count = readU32(bucket, entryAt(entry) + 12);
  const dropEntry = count === 1;
  if (dropEntry && n === 1) return undefined;
  const out = Buffer.allocUnsafe(bucket.length - 8 - (dropEntry ? ENTRY_BYTES : 0));
  writeU32(out, 0, dropEntry ? n - 1 : n);
  let o = HEADER_BYTES;
  for (let i = 0; i < n; i++) {
    if (i === entry && dropEntry) continue;
    out.set(bucket.subarray(entryAt(i), entryAt(i) + ENTRY_BYTES), o);
    if (i === entry) writeU32(out, o + 12, count - 1);
    o += ENTRY_BYTES;
  }
  out.set(bucket.subarray(postingsStart(n), at), o);
  out.set(bucket.subarray(at + 8), o + (at - postingsStart(n)));
  return out;
}
