/**
 * One index segment's postings in memory (the open segment, and the last merged one until its blocks commit).
 *
 * Why this shape: a `Map<term, number[]>` of growing arrays cost ~0.5 µs per posting (array growth, one array per
 * term, and the garbage of both) — a fifth of the load time. Here a term is interned once per segment to a small
 * integer (`term-table.ts`); its first posting sits beside its entry in `chains`, the rest go into chunks carved
 * from one flat Int32Array: 2 postings in a term's first chunk, then 4, 8 and 16, each linked to the previous one. A posting is 3
 * int32s: its sequence relative to the segment's first, term frequency and document length. Reads want a term's
 * newest postings first, and walk its chunks from the newest; a reader taking 96 postings touches a few cache lines
 * per chunk instead of one per posting (with one posting per link, walking a common word's postings in a 65k-fact
 * segment was a cache miss each: ~15 µs of a recall at 1M facts, ~1.5 µs at 10k).
 */
import { POSTING_BYTES } from './codec.ts';
import type { FactTerms } from './fact-terms.ts';
import { SUBJECT, termParts, WORD } from './records.ts';
import { TermTable } from './term-table.ts';
import { bucketBytes, bucketOf, BUCKET_KEY_BYTES, entryAt, LARGE, LARGE_KEY_BYTES, LARGE_POSTINGS, postingsStart, writeBucketKey, writeLargeKey, writeU32 } from './block-layout.ts';

const NONE = -1;
/** A chunk: previous chunk (or NONE), postings used, capacity, term id; then `capacity` postings of POSTING int32s. */
const HEADER = 4;
const POSTING = 3;
const FIRST_CHUNK = 2;
const MAX_CHUNK = 16;
const CHAIN = 8;
/** A removed (forgotten) posting keeps its slot in the chain with this relative sequence. */
const REMOVED = -1;

export interface Posting {
  readonly seq: number;
  readonly tf: number;
  readonly len: number;
}

export type PostingVisitor = (seq: number, tf: number, len: number) => void;

/**
 * A segment's blocks, ready to put (see `block-layout.ts`): per term (by rank, in identity order) its postings, and
 * the puts that store them — buckets then large blocks, in ascending key order, so LMDB appends them. A small term's
 * postings sit inside its bucket's value and a large term's after every bucket, in one buffer: each posting is
 * written once, where it is stored.
 */
export class SegmentBlocks {
  constructor(
    /** Puts. */
    readonly count: number,
    /** The first `buckets` puts are buckets; the rest are large blocks. */
    private readonly buckets: number,
    private readonly keys: Buffer,
    private readonly keyEnds: Int32Array,
    /** The buckets' values one after another, then the large blocks' postings. */
    private readonly values: Buffer,
    private readonly valueEnds: Float64Array,
    /** Per put: the ranks of the terms it stores, [first, end) (a bucket skips its large terms). */
    private readonly putRanks: Int32Array,
    /** Per rank: the put that stores it, and whether it is large. */
    private readonly putOfRank: Int32Array,
    private readonly large: Uint8Array,
    /** Per rank: where its postings start in `values`, and how many there are. */
    private readonly starts: Float64Array,
    private readonly counts: Int32Array,
    private readonly words: readonly (string | undefined)[],
    /** Per rank: the term string of a subject term (a subject's facts, what a subject filter reads), else undefined. */
    private readonly subjects: readonly (string | undefined)[],
  ) {}

  key(p: number): Buffer {
    return this.keys.subarray(p === 0 ? 0 : this.keyEnds[p - 1]!, this.keyEnds[p]!);
  }

  value(p: number): Buffer {
    // A large block's value is its postings as they are (no copy).
    if (p >= this.buckets) return this.block(this.putRanks[p * 2]!);
    return this.values.subarray(p === 0 ? 0 : this.valueEnds[p - 1]!, this.valueEnds[p]!);
  }

  /** Calls `visit` with the word term and posting count of each word the put `p` stores (for document frequency). */
  forEachWord(p: number, visit: (word: string, postings: number) => void): void {
    const bucket = p < this.buckets;
    for (let r = this.putRanks[p * 2]!; r < this.putRanks[p * 2 + 1]!; r++) {
      if (bucket && this.large[r] === 1) continue;
      const word = this.words[r];
      if (word !== undefined) visit(word, this.counts[r]!);
    }
  }

  /**
   * Calls `visit` with each word and subject term of the segment and its block (postings ascending by sequence,
   * `codec.ts`): the terms named by string here (others only by their hash).
   */
  forEachNamedBlock(visit: (term: string, block: Buffer) => void): void {
    for (let r = 0; r < this.counts.length; r++) {
      const term = this.words[r] ?? this.subjects[r];
      if (term !== undefined) visit(term, this.block(r));
    }
  }

  /** The put that stores the term of rank `r`. */
  putOf(r: number): number {
    return this.putOfRank[r]!;
  }

  block(r: number): Buffer {
    const start = this.starts[r]!;
    return this.values.subarray(start, start + this.counts[r]! * POSTING_BYTES);
  }

  postings(r: number): number {
    return this.counts[r]!;
  }
}

/** How big a segment's tables grew: the next segment starts at that size instead of doubling its way there. */
export interface SegmentSize {
  readonly terms: number;
  readonly pool: number;
}

export class SegmentPostings {
  private readonly terms: TermTable;
  /** Per term id: its identity (`hashTerm`: h1, h2, kind and length) and, for words, the term string. */
  private ident: Int32Array;
  private readonly words: (string | undefined)[] = [];
  /** Term id → the term string of each subject term (recall keeps subject lists decoded through merges). */
  private readonly subjectNames = new Map<number, string>();
  /**
   * Per term id, side by side (CHAIN int32s, two terms to a cache line): its newest chunk (NONE: none yet), the
   * postings in it, its capacity, the term's live postings, its first posting (relative sequence, tf, len) and how
   * many postings it has had. The first posting lives here, not in a chunk: most terms of a segment get one or two,
   * and a posting written where the term's lookup already is costs no cache miss.
   */
  private chains: Int32Array;
  /** The chunks (see HEADER), allocated one after another. */
  private pool: Int32Array;
  private poolUsed = 0;
  /** Per term id, its block's index in the last `blocks()` answer (-1: none). */
  private rank: Int32Array | undefined;
  /** The term ids of the fact being filed (`addFact`). */
  private ids = new Int32Array(64);

  constructor(
    readonly segment: number,
    /** The segment's first sequence: postings store their sequence relative to it, so it fits an int32. */
    private readonly base: number,
    /**
     * The previous segment's size, when known: segments of one store are alike, and growing the tables by doubling
     * (a copy each time) was ~1.5% of the load.
     */
    expected?: SegmentSize,
  ) {
    const terms = powerOfTwoAtLeast(Math.max(1024, expected?.terms ?? 0));
    this.terms = new TermTable(terms * 2);
    this.ident = new Int32Array(terms * 3);
    this.chains = new Int32Array(terms * CHAIN);
    this.pool = new Int32Array(powerOfTwoAtLeast(Math.max(64 * 1024, expected?.pool ?? 0)));
  }

  /** How big this segment's tables are now. */
  size(): SegmentSize {
    return { terms: this.words.length, pool: this.poolUsed };
  }

  /** Adds the postings of a fact created at `seq` (ascending order within the segment): the load path. */
  addFact(terms: FactTerms, seq: number): void {
    const n = terms.count;
    const ident = terms.ident;
    if (n > this.ids.length) this.ids = new Int32Array(n * 2);
    const ids = this.ids;
    // Every lookup first, then every posting: each is usually a cache miss in tables of tens of thousands of terms,
    // and a loop of lookups alone lets the processor wait for several at once, where one loop doing both waited for
    // each in turn. A term not found is looked up again (cache-hot now) before it is filed, in case an earlier term
    // of this fact had the same identity.
    for (let i = 0; i < n; i++) ids[i] = this.terms.getHashed(ident[i * 3]!, ident[i * 3 + 1]!, ident[i * 3 + 2]!);
    for (let i = 0; i < n; i++) {
      let id = ids[i]!;
      if (id === -1) id = this.terms.getHashed(ident[i * 3]!, ident[i * 3 + 1]!, ident[i * 3 + 2]!);
      if (id === -1) {
        // A word's string is its document-frequency key; structural terms need none.
        id = this.newTerm(terms.kind[i] === WORD ? terms.name(i) : undefined, ident[i * 3]!, ident[i * 3 + 1]!, ident[i * 3 + 2]!);
        if (terms.kind[i] === SUBJECT) this.subjectNames.set(id, terms.name(i));
      }
      this.post(id, seq, terms.tf[i]!, terms.kind[i] === WORD ? terms.length : 0);
    }
  }

  private post(id: number, seq: number, tf: number, len: number): void {
    // Everything the write needs to know is in `chains` (one cache line): the chunk's own header is only written.
    const chains = this.chains;
    const t = id * CHAIN;
    chains[t + 3]!++;
    if (chains[t + 7]!++ === 0) {
      chains[t + 4] = seq - this.base;
      chains[t + 5] = tf;
      chains[t + 6] = len;
      return;
    }
    let c = chains[id * CHAIN]!;
    let n = chains[id * CHAIN + 1]!;
    if (c === NONE || n === chains[id * CHAIN + 2]) {
      c = this.newChunk(id, c);
      n = 0;
    }
    const pool = this.pool;
    const at = c + HEADER + n * POSTING;
    pool[at] = seq - this.base;
    pool[at + 1] = tf;
    pool[at + 2] = len;
    pool[c + 1] = n + 1;
    chains[t + 1] = n + 1;
  }

  /** Starts a new newest chunk for term `id` after `previous` (twice its capacity, up to MAX_CHUNK). */
  private newChunk(id: number, previous: number): number {
    const capacity = previous === NONE ? FIRST_CHUNK : Math.min(MAX_CHUNK, this.chains[id * CHAIN + 2]! * 2);
    const size = HEADER + capacity * POSTING;
    while (this.poolUsed + size > this.pool.length) this.pool = grow(this.pool);
    const c = this.poolUsed;
    this.poolUsed += size;
    this.pool[c] = previous;
    this.pool[c + 1] = 0;
    this.pool[c + 2] = capacity;
    this.pool[c + 3] = id;
    this.chains[id * CHAIN] = c;
    this.chains[id * CHAIN + 2] = capacity;
    return c;
  }

  /** A new term id for the term with this identity (`hashTerm`), filed in the term table. */
  private newTerm(word: string | undefined, h1: number, h2: number, shape: number): number {
    const id = this.words.length;
    this.words.push(word);
    if (id * CHAIN === this.chains.length) {
      this.chains = grow(this.chains);
      this.ident = grow(this.ident);
    }
    this.chains[id * CHAIN] = NONE;
    this.ident[id * 3] = h1;
    this.ident[id * 3 + 1] = h2;
    this.ident[id * 3 + 2] = shape;
    this.terms.add(h1, h2, shape, id);
    return id;
  }

  private idOf(term: string): number | undefined {
    const { kind, a, b } = termParts(term);
    const id = this.terms.get(kind, a, b);
    return id === -1 ? undefined : id;
  }

  /** Marks a fact's posting removed; false when the term has no posting for `seq` here. */
  remove(term: string, seq: number): boolean {
    const id = this.idOf(term);
    if (id === undefined) return false;
    const rel = seq - this.base;
    const pool = this.pool;
    for (let c = this.chains[id * CHAIN]!; c !== NONE; c = pool[c]!) {
      for (let i = pool[c + 1]! - 1; i >= 0; i--) {
        const at = c + HEADER + i * POSTING;
        if (pool[at] !== rel) continue;
        pool[at] = REMOVED;
        this.chains[id * CHAIN + 3]!--;
        return true;
      }
    }
    const t = id * CHAIN;
    if (this.chains[t + 7]! > 0 && this.chains[t + 4] === rel) {
      this.chains[t + 4] = REMOVED;
      this.chains[t + 3]!--;
      return true;
    }
    return false;
  }

  /** Live postings of `term` in this segment. */
  count(term: string, maxSeq = Number.MAX_SAFE_INTEGER): number {
    const id = this.idOf(term);
    if (id === undefined) return 0;
    // Postings above maxSeq are the newest, in the newest chunks: only those are walked.
    let above = 0;
    const pool = this.pool;
    const limit = maxSeq - this.base;
    const t = id * CHAIN;
    walk: {
      for (let c = this.chains[t]!; c !== NONE; c = pool[c]!) {
        for (let i = pool[c + 1]! - 1; i >= 0; i--) {
          const rel = pool[c + HEADER + i * POSTING]!;
          if (rel === REMOVED) continue;
          if (rel <= limit) break walk;
          above++;
        }
      }
      const first = this.chains[t + 4]!;
      if (this.chains[t + 7]! > 0 && first !== REMOVED && first > limit) above++;
    }
    return this.chains[t + 3]! - above;
  }

  /**
   * Calls `visit` with `term`'s postings with seq ≤ `maxSeq`, newest first, at most `cap` of them; returns how many
   * it visited. Reads without building posting objects (recall's hot path).
   */
  forNewest(term: string, cap: number, maxSeq: number, visit: PostingVisitor): number {
    const id = this.idOf(term);
    if (id === undefined || cap <= 0) return 0;
    const pool = this.pool;
    let n = 0;
    for (let c = this.chains[id * CHAIN]!; c !== NONE; c = pool[c]!) {
      for (let i = pool[c + 1]! - 1; i >= 0; i--) {
        const at = c + HEADER + i * POSTING;
        const rel = pool[at]!;
        if (rel === REMOVED) continue;
        const seq = this.base + rel;
        if (seq > maxSeq) continue;
        visit(seq, pool[at + 1]!, pool[at + 2]!);
        if (++n === cap) return n;
      }
    }
    const t = id * CHAIN;
    const first = this.chains[t + 4]!;
    if (this.chains[t + 7]! > 0 && first !== REMOVED && this.base + first <= maxSeq) {
      visit(this.base + first, this.chains[t + 5]!, this.chains[t + 6]!);
      n++;
    }
    return n;
  }

  /**
   * Every term with live postings, each with its block (see `codec.ts`): 8 bytes per posting, ascending by seq —
   * seq (6 bytes, big-endian), term frequency and document length, both saturating at 255. Blocks come in the
   * order of their keys (segment, then term identity): LMDB appends them to the end of the table instead of
   * inserting each into a tree that grew with the store, and the order does not depend on how the segment was built
   * (a rebuilt segment lacks only forgotten postings, which are left out here too), so a merge resumed after a
   * restart writes the same blocks at the same sequences.
   *
   * The puts' layout is laid out first (bucket directories, and where each term's postings go), then every posting
   * is written once, straight to its place in the value that stores it: building the blocks in a buffer of their
   * own and copying each small one into its bucket was a third of a segment's seal.
   */
  blocks(): SegmentBlocks {
    const terms = this.words.length;
    const order = this.sortedLiveTerms();
    const n = order.length;
    const chains = this.chains;
    const ident = this.ident;
    const rank = new Int32Array(terms).fill(-1);
    const counts = new Int32Array(n);
    const large = new Uint8Array(n);
    const words: (string | undefined)[] = new Array(n);
    let buckets = 0;
    let larges = 0;
    let bucketValueBytes = 0;
    let largeBytes = 0;
    for (let r = 0, last = -1; r < n; r++) {
      const id = order[r]!;
      rank[id] = r;
      words[r] = this.words[id];
      const live = chains[id * CHAIN + 3]!;
      counts[r] = live;
      const bucket = bucketOf(ident[id * 3]!);
      if (bucket !== last) {
        buckets++;
        last = bucket;
        bucketValueBytes += bucketBytes(0, 0);
      }
      if (live > LARGE_POSTINGS) {
        large[r] = 1;
        larges++;
        bucketValueBytes += bucketBytes(1, 0) - bucketBytes(0, 0);
        largeBytes += live * POSTING_BYTES;
      } else bucketValueBytes += bucketBytes(1, live * POSTING_BYTES) - bucketBytes(0, 0);
    }
    this.rank = rank;
    const puts = buckets + larges;
    const keys = Buffer.allocUnsafe(buckets * BUCKET_KEY_BYTES + larges * LARGE_KEY_BYTES);
    const keyEnds = new Int32Array(puts);
    const values = Buffer.allocUnsafe(bucketValueBytes + largeBytes);
    const valueEnds = new Float64Array(buckets);
    const putRanks = new Int32Array(puts * 2);
    const putOfRank = new Int32Array(n);
    const starts = new Float64Array(n);
    // Bucket by bucket: its key, its directory, and where each of its terms' postings go (a large term's after
    // every bucket, in rank order).
    let p = 0;
    let keyAt = 0;
    let valueAt = 0;
    let largeAt = bucketValueBytes;
    for (let first = 0; first < n; ) {
      const bucket = bucketOf(ident[order[first]! * 3]!);
      let end = first + 1;
      while (end < n && bucketOf(ident[order[end]! * 3]!) === bucket) end++;
      keyAt = writeBucketKey(keys, keyAt, this.segment, bucket);
      keyEnds[p] = keyAt;
      writeU32(values, valueAt, end - first);
      let postingAt = valueAt + postingsStart(end - first);
      for (let r = first; r < end; r++) {
        const id = order[r]!;
        const entry = valueAt + entryAt(r - first);
        writeU32(values, entry, ident[id * 3]!);
        writeU32(values, entry + 4, ident[id * 3 + 1]!);
        writeU32(values, entry + 8, ident[id * 3 + 2]!);
        if (large[r] === 1) {
          writeU32(values, entry + 12, LARGE);
          starts[r] = largeAt;
          largeAt += counts[r]! * POSTING_BYTES;
        } else {
          writeU32(values, entry + 12, counts[r]!);
          starts[r] = postingAt;
          postingAt += counts[r]! * POSTING_BYTES;
          putOfRank[r] = p;
        }
      }
      valueAt = postingAt;
      valueEnds[p] = valueAt;
      putRanks[p * 2] = first;
      putRanks[p * 2 + 1] = end;
      p++;
      first = end;
    }
    // Large blocks after every bucket: their keys sort after the buckets' (tag 1 > 0), by identity.
    for (let r = 0; r < n; r++) {
      if (large[r] === 0) continue;
      const id = order[r]!;
      keyAt = writeLargeKey(keys, keyAt, this.segment, ident[id * 3]!, ident[id * 3 + 1]!, ident[id * 3 + 2]!);
      keyEnds[p] = keyAt;
      putRanks[p * 2] = r;
      putRanks[p * 2 + 1] = r + 1;
      putOfRank[r] = p;
      p++;
    }
    // The postings, each written at its term's cursor. Each term's first posting (its oldest) opens its block; then
    // one pass over the chunks in the order they were allocated — a term's in ascending order: sequential reads,
    // where walking each term's chunks in block order was a miss per chunk.
    const cursor = new Float64Array(terms);
    for (let r = 0; r < n; r++) {
      const id = order[r]!;
      let at = starts[r]!;
      const first = chains[id * CHAIN + 4]!;
      if (first !== REMOVED) {
        writePosting(values, at, this.base + first, chains[id * CHAIN + 5]!, chains[id * CHAIN + 6]!);
        at += POSTING_BYTES;
      }
      cursor[id] = at;
    }
    const pool = this.pool;
    for (let c = 0; c < this.poolUsed; c += HEADER + pool[c + 2]! * POSTING) {
      const id = pool[c + 3]!;
      if (rank[id] === -1) continue;
      let at = cursor[id]!;
      for (let i = 0, used = pool[c + 1]!; i < used; i++) {
        const q = c + HEADER + i * POSTING;
        const rel = pool[q]!;
        if (rel === REMOVED) continue;
        writePosting(values, at, this.base + rel, pool[q + 1]!, pool[q + 2]!);
        at += POSTING_BYTES;
      }
      cursor[id] = at;
    }
    const subjects: (string | undefined)[] = new Array(n);
    for (const [id, name] of this.subjectNames) if (rank[id] !== -1) subjects[rank[id]!] = name;
    return new SegmentBlocks(puts, buckets, keys, keyEnds, values, valueEnds, putRanks, putOfRank, large, starts, counts, words, subjects);
  }

  /**
   * The ids of the terms with live postings, ascending by identity (h1, h2, shape as unsigned numbers): a stable
   * radix sort on h1 (three passes of 11 bits; a comparison sort of the segment's ~70k terms was ~15 ms a seal),
   * then ids sharing an h1 (a few per segment) are put in order by the rest of their identity.
   */
  private sortedLiveTerms(): Int32Array {
    const terms = this.words.length;
    const ident = this.ident;
    const chains = this.chains;
    let n = 0;
    for (let id = 0; id < terms; id++) if (chains[id * CHAIN + 3]! > 0) n++;
    let order = new Int32Array(n);
    let other = new Int32Array(n);
    let k = 0;
    for (let id = 0; id < terms; id++) if (chains[id * CHAIN + 3]! > 0) order[k++] = id;
    const counts = new Int32Array(RADIX);
    for (let shift = 0; shift < 32; shift += RADIX_BITS) {
      counts.fill(0);
      for (let i = 0; i < n; i++) counts[(ident[order[i]! * 3]! >>> shift) & (RADIX - 1)]!++;
      for (let d = 0, at = 0; d < RADIX; d++) {
        const c = counts[d]!;
        counts[d] = at;
        at += c;
      }
      for (let i = 0; i < n; i++) {
        const id = order[i]!;
        other[counts[(ident[id * 3]! >>> shift) & (RADIX - 1)]!++] = id;
      }
      const t = order;
      order = other;
      other = t;
    }
    const unsigned = (i: number): number => ident[i]! >>> 0;
    const byIdentity = (x: number, y: number): number =>
      unsigned(x * 3) - unsigned(y * 3) || unsigned(x * 3 + 1) - unsigned(y * 3 + 1) || unsigned(x * 3 + 2) - unsigned(y * 3 + 2);
    for (let i = 0; i < n; ) {
      let j = i + 1;
      while (j < n && ident[order[j]! * 3] === ident[order[i]! * 3]) j++;
      if (j - i > 1) order.subarray(i, j).sort(byIdentity);
      i = j;
    }
    return order;
  }

  /** The index of `term`'s block in the last `blocks()` answer, or -1. */
  blockIndexOf(term: string): number {
    const id = this.idOf(term);
    return id === undefined || this.rank === undefined ? -1 : this.rank[id] ?? -1;
  }
}

/** A posting's 8 bytes (see `codec.ts`): seq (6 bytes, big-endian), then tf and length saturating at 255. */
function writePosting(out: Buffer, at: number, seq: number, tf: number, len: number): void {
  const high = Math.floor(seq / 0x100000000);
  const low = seq - high * 0x100000000;
  out[at] = high >>> 8;
  out[at + 1] = high;
  out[at + 2] = low >>> 24;
  out[at + 3] = low >>> 16;
  out[at + 4] = low >>> 8;
  out[at + 5] = low;
  out[at + 6] = Math.min(255, tf);
  out[at + 7] = Math.min(255, len);
}

/** `sortedLiveTerms` sorts by h1 RADIX_BITS bits at a time (11, 11, then the top 10). */
const RADIX_BITS = 11;
const RADIX = 1 << RADIX_BITS;

function powerOfTwoAtLeast(n: number): number {
  return 2 ** Math.ceil(Math.log2(n));
}

function grow(a: Int32Array): Int32Array {
  const b = new Int32Array(a.length * 2);
  b.set(a);
  return b;
}
