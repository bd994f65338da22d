/**
 * A segment's term dictionary: (kind, parts) → a small term id, for the ~13 postings every new fact files.
 *
 * Why not a `Map<string, number>`: on the load path its lookups were the biggest single cost (~10% of the CPU,
 * `FindOrderedHashMapEntry`), because each probe chases a bucket, an entry and the stored key string through memory
 * the LMDB page copies keep evicting from the cache. Here a term is identified by two independent 32-bit hashes of
 * its kind and parts plus its length, stored with its id in one 16-byte slot of a typed array: a lookup is the hash
 * computation over the (cache-hot) token and, usually, one cache line.
 *
 * The price: two different terms of equal kind and length whose 64 hash bits both collide would share a posting
 * list within one segment. For the ~50k terms of a segment the chance is ~1e-10; the effect would be one extra
 * candidate in a recall, the same on every replica (the hashes are deterministic), never a lost or altered fact.
 */
import { SUBJECT_PREDICATE, type TermKind } from './records.ts';

const SLOT = 4; // h1, h2, kind << 24 | length, id
const EMPTY_ID = -1;

export class TermTable {
  private slots: Int32Array;
  private mask: number;
  private count = 0;

  constructor(capacity = 4096) {
    this.slots = new Int32Array(capacity * SLOT).fill(EMPTY_ID);
    this.mask = capacity - 1;
  }

  /** The id of (kind, a, b), or -1. */
  get(kind: TermKind, a: string, b: string): number {
    const h = hashTerm(kind, a, b, TERM_HASH);
    return this.getHashed(h[0]!, h[1]!, h[2]!);
  }

  /** The id of the term with this identity (`hashTerm`), or -1; `add` files it under a new id. */
  getHashed(h1: number, h2: number, shape: number): number {
    const s = this.slots;
    const mask = this.mask;
    for (let i = h1 & mask; ; i = (i + 1) & mask) {
      const at = i * SLOT;
      const id = s[at + 3]!;
      if (id === EMPTY_ID || (s[at] === h1 && s[at + 1] === h2 && s[at + 2] === shape)) return id;
    }
  }

  /** Files the term with this identity under `id`; it must not be in the table (a lookup answered -1). */
  add(h1: number, h2: number, shape: number, id: number): void {
    if ((this.count + 1) * 2 > this.mask + 1) this.grow();
    this.place(h1, h2, shape, id);
    this.count++;
  }

  private place(h1: number, h2: number, shape: number, id: number): void {
    const s = this.slots;
    let i = h1 & this.mask;
    while (s[i * SLOT + 3] !== EMPTY_ID) i = (i + 1) & this.mask;
    const at = i * SLOT;
    s[at] = h1;
    s[at + 1] = h2;
    s[at + 2] = shape;
    s[at + 3] = id;
  }

  private grow(): void {
    const old = this.slots;
    this.slots = new Int32Array(old.length * 2).fill(EMPTY_ID);
    this.mask = (this.slots.length / SLOT) - 1;
    for (let at = 0; at < old.length; at += SLOT) if (old[at + 3] !== EMPTY_ID) this.place(old[at]!, old[at + 1]!, old[at + 2]!, old[at + 3]!);
  }
}

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
