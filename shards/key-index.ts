/**
 * A multimap from 32-bit hashes to log sequences, in two typed arrays: the write path's lookup indexes (which active
 * fact has this identity, which fact is the active value of this (subject, predicate)) kept in memory.
 *
 * Why in memory and not in LMDB: those keys are content, so every insert and removal landed on a random B-tree page;
 * at 1M facts that was two random reads, two or three random writes and a page copied per write for every fact —
 * most of the load's cost. Here an entry is 12 bytes and a lookup a few array reads. The index is derived data: it
 * is rebuilt from the facts when the store opens (see `store.ts`), never stored, so it cannot change the bytes on
 * disk. Only hashes are kept (no strings for the garbage collector to trace): a hit is a candidate the caller
 * confirms by reading the fact, so a hash collision costs a read, never a wrong answer.
 *
 * Open addressing with linear probing and backward-shift deletion; a sequence of 0 marks an empty slot (log
 * sequences start at 1).
 */

const EMPTY = 0;
const MIN_CAPACITY = 1024;

export class KeyIndex {
  private hashes: Int32Array;
  private seqs: Float64Array;
  private mask: number;
  private count = 0;

  constructor(capacity = MIN_CAPACITY) {
    let size = MIN_CAPACITY;
    while (size < capacity * 2) size *= 2;
    this.hashes = new Int32Array(size);
    this.seqs = new Float64Array(size);
    this.mask = size - 1;
  }

  get size(): number {
    return this.count;
  }

  clear(): void {
    this.hashes.fill(0);
    this.seqs.fill(EMPTY);
    this.count = 0;
  }

  add(hash: number, seq: number): void {
    if ((this.count + 1) * 2 > this.seqs.length) this.grow();
    const mask = this.mask;
    let i = hash & mask;
    while (this.seqs[i] !== EMPTY) i = (i + 1) & mask;
    this.hashes[i] = hash;
    this.seqs[i] = seq;
    this.count++;
  }

  /** Whether any sequence is filed under `hash`: lets callers skip building a visitor for the common miss. */
  has(hash: number): boolean {
    const mask = this.mask;
    for (let i = hash & mask; this.seqs[i] !== EMPTY; i = (i + 1) & mask) if (this.hashes[i] === hash) return true;
    return false;
  }

  /** Calls `visit` with each sequence filed under `hash` until it returns true; returns that sequence, or 0. */
  find(hash: number, visit: (seq: number) => boolean): number {
    const mask = this.mask;
    for (let i = hash & mask; this.seqs[i] !== EMPTY; i = (i + 1) & mask) {
      if (this.hashes[i] === hash && visit(this.seqs[i]!)) return this.seqs[i]!;
    }
    return 0;
  }

  /** Removes the entry (hash, seq) if present. */
  remove(hash: number, seq: number): boolean {
    const mask = this.mask;
    let i = hash & mask;
    for (; this.seqs[i] !== EMPTY; i = (i + 1) & mask) {
      if (this.hashes[i] === hash && this.seqs[i] === seq) break;
    }
    if (this.seqs[i] === EMPTY) return false;
    // Backward-shift deletion: move later entries of the probe run into the hole when their home slot allows it.
    let hole = i;
    for (let j = (i + 1) & mask; this.seqs[j] !== EMPTY; j = (j + 1) & mask) {
      const home = this.hashes[j]! & mask;
      // j's entry may move to `hole` unless its home lies cyclically in (hole, j].
      const between = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (between) continue;
      this.hashes[hole] = this.hashes[j]!;
      this.seqs[hole] = this.seqs[j]!;
      hole = j;
    }
    this.hashes[hole] = 0;
    this.seqs[hole] = EMPTY;
    this.count--;
    return true;
  }

  private grow(): void {
    const hashes = this.hashes;
    const seqs = this.seqs;
    this.hashes = new Int32Array(hashes.length * 2);
    this.seqs = new Float64Array(seqs.length * 2);
    this.mask = this.seqs.length - 1;
    this.count = 0;
    for (let i = 0; i < seqs.length; i++) if (seqs[i] !== EMPTY) this.add(hashes[i]!, seqs[i]!);
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
