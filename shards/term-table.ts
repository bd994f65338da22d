/**
 * A term's identity within a segment (`hashTerm`): what a segment's hash table of terms (`segment.ts`) and its
 * blocks' keys (`block-layout.ts`) are keyed by, instead of the term string.
 *
 * Why not a `Map<string, number>`: on the load path its lookups were the biggest single cost (~10% of the CPU,
 * `FindOrderedHashMapEntry`), because each probe chases a bucket, an entry and the stored key string through memory
 * the LMDB page copies keep evicting from the cache. A term identified by two independent 32-bit hashes of its kind
 * and parts plus its length fits in a few int32s of a typed array, and is hashed from the (cache-hot) token.
 *
 * The price: two different terms of equal kind and length whose 64 hash bits both collide would share a posting
 * list within one segment. For the ~50k terms of a segment the chance is ~1e-10; the effect would be one extra
 * candidate in a recall, the same on every replica (the hashes are deterministic), never a lost or altered fact.
 */
import { SUBJECT_PREDICATE, type TermKind } from './records.ts';

/** Scratch for `hashTerm` callers that hash one term at a time (the store is single-threaded). */
export const TERM_HASH = new Int32Array(3);

/**
 * A term's identity within a segment: two independent 32-bit hashes of its kind and parts, and its kind and length
 * (`kind << 24 | length`), written to `out[0..2]`. Deterministic on every machine: index block keys are made of it.
 */
export function hashTerm(kind: TermKind, a: string, b: string, out: Int32Array): Int32Array {
  let h1 = Math.imul(0x811c9dc5 ^ kind, 0x01000193);
  let h2 = Math.imul(0x9747b28c ^ kind, 0x5bd1e995);
  for (let i = 0; i < a.length; i++) {
    const c = a.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995);
    h2 ^= h2 >>> 13;
  }
  let length = a.length;
  if (kind === SUBJECT_PREDICATE) {
    h1 = Math.imul(h1 ^ 0x1f, 0x01000193);
    h2 = Math.imul(h2 ^ 0x1f, 0x5bd1e995);
    for (let i = 0; i < b.length; i++) {
      const c = b.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995);
      h2 ^= h2 >>> 13;
    }
    length += b.length + 1;
  }
  // Final mixing, so the low bits that pick the slot depend on every character.
  h1 ^= h1 >>> 16;
  h1 = Math.imul(h1, 0x85ebca6b);
  h1 ^= h1 >>> 13;
  out[0] = h1;
  out[1] = h2;
  out[2] = (kind << 24) | (length & 0xffffff);
  return out;
}
