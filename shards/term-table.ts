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

/** Int32s per `IdentityMap` slot: h1, h2, shape, value index + 1 (0: empty). */
const IDENTITY_SLOT = 4;

/**
 * Values by term identity (`hashTerm`: h1, h2, shape), for the write path's state that follows a term from segment
 * to segment — the df record it last wrote, the decoded merged postings — where the segment names each term by its
 * identity (and a fresh string for words and subjects). A lookup is one probe of an open-addressing Int32Array (16
 * bytes a slot) instead of a `Map<string, …>` lookup by the segment's new string, which hashed the string and
 * compared it with the stored key: at 1M facts a few cache misses each, ~0.3 µs a fact for the two users together.
 * Linear probing, filled to at most 1/2, deletion by shifting the cluster back (no tombstones).
 */
export class IdentityMap<V> {
  private slots = new Int32Array(IDENTITY_SLOT * 1024);
  private mask = 1023;
  private values: (V | undefined)[] = [];
  private freeIndexes: number[] = [];
  private used = 0;

  get size(): number {
    return this.used;
  }

  get(h1: number, h2: number, shape: number): V | undefined {
    const i = this.find(h1, h2, shape);
    return i < 0 ? undefined : this.values[this.slots[i * IDENTITY_SLOT + 3]! - 1];
  }

  set(h1: number, h2: number, shape: number, value: V): void {
    let i = this.find(h1, h2, shape);
    if (i >= 0) {
      this.values[this.slots[i * IDENTITY_SLOT + 3]! - 1] = value;
      return;
    }
    if ((this.used + 1) * 2 > this.mask + 1) {
      this.grow();
      i = this.find(h1, h2, shape);
    }
    const index = this.freeIndexes.length > 0 ? this.freeIndexes.pop()! : this.values.length;
    this.values[index] = value;
    const at = ~i * IDENTITY_SLOT;
    const s = this.slots;
    s[at] = h1;
    s[at + 1] = h2;
    s[at + 2] = shape;
    s[at + 3] = index + 1;
    this.used++;
  }

  delete(h1: number, h2: number, shape: number): void {
    let i = this.find(h1, h2, shape);
    if (i < 0) return;
    const s = this.slots;
    const index = s[i * IDENTITY_SLOT + 3]! - 1;
    this.values[index] = undefined;
    this.freeIndexes.push(index);
    this.used--;
    // Shift the rest of the cluster back over the hole, so a probe never stops short of an entry.
    const mask = this.mask;
    for (let j = (i + 1) & mask; s[j * IDENTITY_SLOT + 3] !== 0; j = (j + 1) & mask) {
      const home = s[j * IDENTITY_SLOT]! & mask;
      // The entry at j may move to the hole at i unless its home lies cyclically in (i, j].
      if (i <= j ? home > i && home <= j : home > i || home <= j) continue;
      for (let k = 0; k < IDENTITY_SLOT; k++) s[i * IDENTITY_SLOT + k] = s[j * IDENTITY_SLOT + k]!;
      i = j;
    }
    s[i * IDENTITY_SLOT + 3] = 0;
  }

  clear(): void {
    this.slots.fill(0);
    this.values = [];
    this.freeIndexes = [];
    this.used = 0;
  }

  /** The slot holding this identity, or ~ the empty slot where it would go. */
  private find(h1: number, h2: number, shape: number): number {
    const s = this.slots;
    const mask = this.mask;
    for (let i = h1 & mask; ; i = (i + 1) & mask) {
      const at = i * IDENTITY_SLOT;
      if (s[at + 3] === 0) return ~i;
      if (s[at] === h1 && s[at + 1] === h2 && s[at + 2] === shape) return i;
    }
  }

  private grow(): void {
    const old = this.slots;
    this.slots = new Int32Array(old.length * 2);
    this.mask = this.mask * 2 + 1;
    for (let at = 0; at < old.length; at += IDENTITY_SLOT) {
      if (old[at + 3] === 0) continue;
      const to = ~this.find(old[at]!, old[at + 1]!, old[at + 2]!) * IDENTITY_SLOT;
      for (let k = 0; k < IDENTITY_SLOT; k++) this.slots[to + k] = old[at + k]!;
    }
  }
}
