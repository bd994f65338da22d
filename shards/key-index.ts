/**
 * A multimap from 32-bit hashes to store positions (sequences), in one typed array: the write path's lookup indexes (which active
 * fact has this identity, which fact is the active value of this (subject, predicate)) kept in memory.
 *
 * Why in memory and not in LMDB: those keys are content, so every insert and removal landed on a random B-tree page;
 * at 1M facts that was two random reads, two or three random writes and a page copied per write for every fact —
 * most of the load's cost. Here an entry is 8 bytes and a lookup a few array reads. The index is derived data: it
 * is rebuilt from the facts when the store opens (see `store.ts`), never stored, so it cannot change the bytes on
 * disk. Only hashes are kept (no strings for the garbage collector to trace): a hit is a candidate the caller
 * confirms by reading the fact, so a hash collision costs a read, never a wrong answer.
 *
 * Open addressing with linear probing and backward-shift deletion; a sequence of 0 marks an empty slot (log
 * sequences start at 1). A slot is the hash (int32) and the sequence (uint32) side by side in one Int32Array (8
 * bytes), so a probe reads one cache line: with the hashes and the sequences in two arrays every lookup in a table
 * of a million facts was two cache misses, and with 16-byte slots (a Float64Array) the ops and identity tables of a
 * million facts were 32 MB each, past the last-level cache together; 8-byte slots halve that (a micro-benchmark of
 * a million opIds, two lookups and two inserts a fact: 0.31–0.37 → 0.24 µs). The price: sequences (store
 * positions, change numbers) must be below 2^32, 4.29 billion; `add` refuses a larger one.
 */

const EMPTY = 0;
const MIN_CAPACITY = 1024;
/** The largest sequence a slot holds (a uint32). */
export const MAX_KEY_INDEX_SEQ = 0xffffffff;

export class KeyIndex {
  /** Slot i: hash at 2i (int32), sequence at 2i + 1 (uint32, read back with `>>> 0`). */
  private slots: Int32Array;
  private mask: number;
  private count = 0;

  constructor(capacity = MIN_CAPACITY) {
    let size = MIN_CAPACITY;
    while (size < capacity * 2) size *= 2;
    this.slots = new Int32Array(size * 2);
    this.mask = size - 1;
  }

  get size(): number {
    return this.count;
  }

  clear(): void {
    this.slots.fill(EMPTY);
    this.count = 0;
  }

  add(hash: number, seq: number): void {
    if (!(seq > 0 && seq <= MAX_KEY_INDEX_SEQ)) {
      if (!(seq > 0)) throw new RangeError(`KeyIndex: ${seq} is not a store position (they start at 1)`);
      // Thrown inside the apply's transaction, which then rolls back: the store stays as it was (decisions §47).
      throw new RangeError(
        `store position or change number ${seq} is past the last one this store can index (${MAX_KEY_INDEX_SEQ}): ` +
          `this domain has used up its 2^32 positions, and nothing more can be applied to it`,
      );
    }
    if ((this.count + 1) * 2 > this.mask + 1) this.grow();
    const s = this.slots;
    const mask = this.mask;
    const h = hash | 0;
    let i = h & mask;
    while (s[i * 2 + 1] !== EMPTY) i = (i + 1) & mask;
    s[i * 2] = h;
    s[i * 2 + 1] = seq | 0;
    this.count++;
  }

  /**
   * Reads `hash`'s home slot (its value means nothing): a caller about to look up many hashes touches them all
   * first, so their cache misses overlap instead of coming one at a time (see `Applier.prefetch`).
   */
  touch(hash: number): number {
    return this.slots[((hash | 0) & this.mask) * 2 + 1]!;
  }

  /** Whether any sequence is filed under `hash`: lets callers skip building a visitor for the common miss. */
  has(hash: number): boolean {
    const s = this.slots;
    const mask = this.mask;
    const h = hash | 0;
    for (let i = h & mask; s[i * 2 + 1] !== EMPTY; i = (i + 1) & mask) if (s[i * 2] === h) return true;
    return false;
  }

  /** Calls `visit` (which must not change this index) with each sequence filed under `hash` until it returns true; returns that sequence, or 0. */
  find(hash: number, visit: (seq: number) => boolean): number {
    const s = this.slots;
    const mask = this.mask;
    const h = hash | 0;
    for (let i = h & mask; s[i * 2 + 1] !== EMPTY; i = (i + 1) & mask) {
      if (s[i * 2] === h && visit(s[i * 2 + 1]! >>> 0)) return s[i * 2 + 1]! >>> 0;
    }
    return 0;
  }

  /** Removes the entry (hash, seq) if present. */
  remove(hash: number, seq: number): boolean {
    const s = this.slots;
    const mask = this.mask;
    const h = hash | 0;
    const v = seq | 0;
    let i = h & mask;
    for (; s[i * 2 + 1] !== EMPTY; i = (i + 1) & mask) {
      if (s[i * 2] === h && s[i * 2 + 1] === v) break;
    }
    if (s[i * 2 + 1] === EMPTY) return false;
    // Backward-shift deletion: move later entries of the probe run into the hole when their home slot allows it.
    let hole = i;
    for (let j = (i + 1) & mask; s[j * 2 + 1] !== EMPTY; j = (j + 1) & mask) {
      const home = s[j * 2]! & mask;
      // j's entry may move to `hole` unless its home lies cyclically in (hole, j].
      const between = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (between) continue;
      s[hole * 2] = s[j * 2]!;
      s[hole * 2 + 1] = s[j * 2 + 1]!;
      hole = j;
    }
    s[hole * 2] = 0;
    s[hole * 2 + 1] = EMPTY;
    this.count--;
    return true;
  }

  private grow(): void {
    const old = this.slots;
    const s = new Int32Array(old.length * 2);
    const mask = old.length - 1;
    // One loop, no `add` per entry: the count is unchanged and the new table has room (tables of a million facts
    // are rehashed on the load path).
    for (let i = 0; i < old.length; i += 2) {
      const seq = old[i + 1]!;
      if (seq === EMPTY) continue;
      const hash = old[i]!;
      let j = hash & mask;
      while (s[j * 2 + 1] !== EMPTY) j = (j + 1) & mask;
      s[j * 2] = hash;
      s[j * 2 + 1] = seq;
    }
    this.slots = s;
    this.mask = mask;
  }
}

/** FNV-1a over UTF-16 code units, continuing from `h`: deterministic, no allocation. */
export function hashString(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h;
}

/** Mixes a separator into the running hash, so ("ab", "c") and ("a", "bc") differ. */
export function hashSeparator(h: number): number {
  return Math.imul(h ^ 0x1f, 0x01000193);
}
