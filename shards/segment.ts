/**
 * One index segment's postings in memory (the open segment, and the last merged one until its blocks commit).
 *
 * Why this shape: a `Map<term, number[]>` of growing arrays cost ~0.5 µs per posting (array growth, one array per
 * term, and the garbage of both) — a fifth of the load time. Here a term is interned once per segment to a small
 * integer and a slot of a hash table keyed by its identity (`hashTerm`), which also holds its first posting; the rest
 * go into chunks carved from one flat Int32Array: 2 postings in a term's first chunk, then 4, 8 and 16 each, each
 * linked to the previous one. A posting is 2
 * int32s: its sequence relative to the segment's first, then term frequency | document length << 16. Reads want a term's
 * newest postings first, and walk its chunks from the newest; a reader taking 96 postings touches a few cache lines
 * per chunk instead of one per posting (with one posting per link, walking a common word's postings in a 65k-fact
 * segment was a cache miss each: ~15 µs of a recall at 1M facts, ~1.5 µs at 10k).
 */
import { POSTING_BYTES } from './codec.ts';
import type { FactTerms } from './fact-terms.ts';
import { SUBJECT, termParts, WORD } from './records.ts';
import { hashTerm, TERM_HASH } from './term-table.ts';
import { bucketBytes, bucketOf, BUCKET_KEY_BYTES, entryAt, LARGE, LARGE_KEY_BYTES, LARGE_POSTINGS, postingsStart, writeBucketKey, writeLargeKey, writeU32 } from './block-layout.ts';

const NONE = -1;
/**
 * A chunk: previous chunk (or NONE), capacity, term id; then `capacity` postings of POSTING int32s: the relative
 * sequence, then tf | length << 16 (both below 2^16, as in a slot's first posting). Two int32s, not three: the
 * pool is a third smaller, so filing a segment touches fewer cache lines and its seal reads fewer bytes.
 */
const HEADER = 3;
const POSTING = 2;
/** Chunk capacities: 2, 4, 8, then 16 each (`chunkFill` and `chunkCapacity` count on it). */
const FIRST_CHUNK = 2;
const MAX_CHUNK = 16;
/** A term's slot (see `SegmentPostings.slots`): h1, h2, shape, then these. */
const SLOT = 8;
const ID = 3;
const CHUNK = 4;
const HAD = 5;
const FIRST = 6;
const FIRST_TF_LEN = 7;
/** The id of an empty slot. */
const EMPTY = -1;
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
    /** Per rank: the term's identity (`hashTerm`: h1, h2, shape). */
    private readonly idents: Int32Array,
  ) {}

  key(p: number): Buffer {
    return this.keys.subarray(p === 0 ? 0 : this.keyEnds[p - 1]!, this.keyEnds[p]!);
  }

  value(p: number): Buffer {
    // A large block's value is its postings as they are (no copy).
    if (p >= this.buckets) return this.block(this.putRanks[p * 2]!);
    return this.values.subarray(p === 0 ? 0 : this.valueEnds[p - 1]!, this.valueEnds[p]!);
  }

  /**
   * Calls `visit` with the word term, posting count and identity (`hashTerm`) of each word the put `p` stores (for
   * document frequency).
   */
  forEachWord(p: number, visit: (word: string, postings: number, h1: number, h2: number, shape: number) => void): void {
    const bucket = p < this.buckets;
    const idents = this.idents;
    for (let r = this.putRanks[p * 2]!; r < this.putRanks[p * 2 + 1]!; r++) {
      if (bucket && this.large[r] === 1) continue;
      const word = this.words[r];
      if (word !== undefined) visit(word, this.counts[r]!, idents[r * 3]!, idents[r * 3 + 1]!, idents[r * 3 + 2]!);
    }
  }

  /**
   * Calls `visit` with each word and subject term of the segment, its block (postings ascending by sequence,
   * `codec.ts`) and its identity: the terms named by string here (others only by their hash).
   */
  forEachNamedBlock(visit: (term: string, block: Buffer, h1: number, h2: number, shape: number) => void): void {
    const idents = this.idents;
    for (let r = 0; r < this.counts.length; r++) {
      const term = this.words[r] ?? this.subjects[r];
      if (term !== undefined) visit(term, this.block(r), idents[r * 3]!, idents[r * 3 + 1]!, idents[r * 3 + 2]!);
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
  /**
   * The term table and each term's chain head in one: an open-addressing hash table of SLOT int32s a term (32
   * bytes, two to a cache line) — its identity (`hashTerm`: h1, h2, kind and length), its id, its newest chunk (or
   * NONE), how many postings it has had, and its first posting (relative sequence, then tf | length << 16). Filing
   * a posting of a term the table already holds touches that one line and the place the posting goes: with the
   * table (id by identity) and the chain heads (by id) apart, a rare term cost two cache misses before its posting
   * was written. How full its newest chunk is follows from how many postings it has had (the chunk sizes are fixed),
   * so a chunk's header is written only when it is started.
   */
  private slots: Int32Array;
  private mask: number;
  /** Per term id: its slot (moves when the table grows). */
  private slotOf: Int32Array;
  /** Per term id: the word's string, for words (document-frequency keys); undefined for structural terms. */
  private readonly words: (string | undefined)[] = [];
  /** Term id → the term string of each subject term (recall keeps subject lists decoded through merges). */
  private readonly subjectNames = new Map<number, string>();
  /** Term id → its postings marked removed (forget): rare, so not a field of every slot. */
  private readonly removed = new Map<number, number>();
  /** The chunks (see HEADER), allocated one after another. */
  private pool: Int32Array;
  private poolUsed = 0;
  /** Per term id, its block's index in the last `blocks()` answer (-1: none). */
  private rank: Int32Array | undefined;
  /** The slots of the fact being filed (`addFact`): ≥ 0 found, else ~ the empty slot the search ended at. */
  private found = new Int32Array(64);
  /** `addFact`'s answer: the indices (in its terms) of the words it filed first in this segment, the first n. */
  freshWords = new Int32Array(64);
  /** Times the table grew: slots found before a growth are stale. */
  private growths = 0;
  private released = false;

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
    // As many slots as the previous segment had terms (rounded up to a power of two), filled to at most 3/4: a
    // table twice that size (at most half full) took more cache misses, not fewer (cachegrind: ~15% more
    // last-level misses filing a segment).
    const spare = spareArrays;
    const poolSize = powerOfTwoAtLeast(Math.max(64 * 1024, expected?.pool ?? 0));
    if (spare !== undefined && spare.slots.length === terms * SLOT && spare.pool.length >= poolSize) {
      // A released segment's arrays (see `release`): the pool needs no clearing (a chunk is written before it is
      // read), the table does.
      spareArrays = undefined;
      this.reusedArrays = true;
      this.slots = spare.slots.fill(EMPTY);
      this.slotOf = spare.slotOf;
      this.pool = spare.pool;
    } else {
      this.slots = new Int32Array(terms * SLOT).fill(EMPTY);
      this.slotOf = new Int32Array(terms);
      this.pool = new Int32Array(poolSize);
    }
    this.mask = terms - 1;
  }

  /** Whether this segment was built on a released segment's arrays (tests check the reuse really happens). */
  readonly reusedArrays: boolean = false;

  /**
   * This segment will not be read again (its merge committed and the merged postings took it in: `PostingIndex`):
   * its arrays may serve a later segment. Fresh arrays cost a page fault on every page as the segment first writes
   * them (~11 MB a segment: ~0.13 µs of every fact's filing at 1M, in the profile), reused ones none. Any use
   * after this throws.
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    const spare = spareArrays;
    if (spare === undefined || this.pool.length > spare.pool.length) spareArrays = { slots: this.slots, slotOf: this.slotOf, pool: this.pool };
    this.slots = RELEASED;
    this.slotOf = RELEASED;
    this.pool = RELEASED;
  }

  private checkLive(): void {
    if (this.released) throw new Error(`segment ${this.segment} used after release`);
  }

  /** How big this segment's tables are now. */
  size(): SegmentSize {
    return { terms: this.words.length, pool: this.poolUsed };
  }

  /** Adds the postings of a fact created at `seq` (ascending order within the segment): the load path. */
  addFact(terms: FactTerms, seq: number): number {
    if (this.released) this.checkLive();
    const n = terms.count;
    const ident = terms.ident;
    if (n > this.found.length) {
      this.found = new Int32Array(n * 2);
      this.freshWords = new Int32Array(n * 2);
    }
    const found = this.found;
    // Every lookup first, then every posting: each is usually a cache miss in a table of tens of thousands of terms,
    // and a loop of lookups alone lets the processor wait for several at once, where one loop doing both waited for
    // each in turn. A term not found is looked up again (cache-hot now) before it is filed, in case an earlier term
    // of this fact had the same identity; so is every term after the table grew.
    for (let i = 0; i < n; i++) found[i] = this.find(ident[i * 3]!, ident[i * 3 + 1]!, ident[i * 3 + 2]!);
    const growths = this.growths;
    let fresh = 0;
    for (let i = 0; i < n; i++) {
      let slot = found[i]!;
      if (slot < 0 || this.growths !== growths) slot = this.find(ident[i * 3]!, ident[i * 3 + 1]!, ident[i * 3 + 2]!);
      if (slot < 0) {
        // A word's string is its document-frequency key; structural terms need none.
        slot = this.newTerm(~slot, terms.kind[i] === WORD ? terms.name(i) : undefined, ident[i * 3]!, ident[i * 3 + 1]!, ident[i * 3 + 2]!);
        if (terms.kind[i] === SUBJECT) this.subjectNames.set(this.slots[slot * SLOT + ID]!, terms.name(i));
        else if (terms.kind[i] === WORD) this.freshWords[fresh++] = i;
      }
      this.post(slot, seq, terms.tf[i]!, terms.kind[i] === WORD ? terms.length : 0);
    }
    return fresh;
  }

  /** The slot of the term with this identity, or ~ the empty slot where it would go. */
  private find(h1: number, h2: number, shape: number): number {
    const s = this.slots;
    const mask = this.mask;
    for (let i = h1 & mask; ; i = (i + 1) & mask) {
      const at = i * SLOT;
      if (s[at + ID] === EMPTY) return ~i;
      if (s[at] === h1 && s[at + 1] === h2 && s[at + 2] === shape) return i;
    }
  }

  private post(slot: number, seq: number, tf: number, len: number): void {
    const s = this.slots;
    const t = slot * SLOT;
    const had = s[t + HAD]!;
    s[t + HAD] = had + 1;
    if (had === 0) {
      // tf and length are below 2^16: a text is at most MAX_TEXT_BYTES (16 KiB), so it has fewer tokens than that.
      s[t + FIRST] = seq - this.base;
      s[t + FIRST_TF_LEN] = tf | (len << 16);
      return;
    }
    let c = s[t + CHUNK]!;
    // `had - 1` postings are in chunks: the newest chunk's fill and capacity follow from that count.
    let n = had === 1 ? 0 : chunkFill(had - 1);
    if (had === 1 || n === chunkCapacity(had - 1)) {
      c = this.newChunk(s[t + ID]!, c, had === 1 ? FIRST_CHUNK : Math.min(MAX_CHUNK, chunkCapacity(had - 1) * 2));
      s[t + CHUNK] = c;
      n = 0;
    }
    const pool = this.pool;
    const at = c + HEADER + n * POSTING;
    pool[at] = seq - this.base;
    pool[at + 1] = tf | (len << 16);
  }

  /** Starts a new chunk of `capacity` postings for term `id` after `previous`; returns where it starts. */
  private newChunk(id: number, previous: number, capacity: number): number {
    const size = HEADER + capacity * POSTING;
    while (this.poolUsed + size > this.pool.length) this.pool = grow(this.pool);
    const c = this.poolUsed;
    this.poolUsed += size;
    this.pool[c] = previous;
    this.pool[c + 1] = capacity;
    this.pool[c + 2] = id;
    return c;
  }

  /** Files a new term in the empty slot `slot` (found by `find`) under the next id; returns its slot. */
  private newTerm(slot: number, word: string | undefined, h1: number, h2: number, shape: number): number {
    const id = this.words.length;
    this.words.push(word);
    if ((id + 1) * 4 > (this.mask + 1) * 3) {
      this.growTable();
      slot = ~this.find(h1, h2, shape);
    }
    if (id === this.slotOf.length) this.slotOf = grow(this.slotOf);
    const s = this.slots;
    const t = slot * SLOT;
    s[t] = h1;
    s[t + 1] = h2;
    s[t + 2] = shape;
    s[t + ID] = id;
    s[t + CHUNK] = NONE;
    s[t + HAD] = 0;
    this.slotOf[id] = slot;
    return slot;
  }

  private growTable(): void {
    const old = this.slots;
    this.slots = new Int32Array(old.length * 2).fill(EMPTY);
    this.mask = this.mask * 2 + 1;
    this.growths++;
    for (let at = 0; at < old.length; at += SLOT) {
      if (old[at + ID] === EMPTY) continue;
      const slot = ~this.find(old[at]!, old[at + 1]!, old[at + 2]!);
      for (let k = 0; k < SLOT; k++) this.slots[slot * SLOT + k] = old[at + k]!;
      this.slotOf[old[at + ID]!] = slot;
    }
  }

  /** The slot of `term`, or -1. */
  private slotOfTerm(term: string): number {
    const { kind, a, b } = termParts(term);
    const h = hashTerm(kind, a, b, TERM_HASH);
    const slot = this.find(h[0]!, h[1]!, h[2]!);
    return slot < 0 ? -1 : slot;
  }

  /** A term's live postings: those it has had less the removed ones. */
  private live(t: number): number {
    const had = this.slots[t + HAD]!;
    return this.removed.size === 0 ? had : had - (this.removed.get(this.slots[t + ID]!) ?? 0);
  }

  /**
   * Marks the postings of `seqs` (ascending, in this segment) removed, in one walk of the term's chunks: they hold
   * its postings ascending, so the walk from the newest meets them in the reverse order of `seqs`.
   */
  removeAll(term: string, seqs: readonly number[]): void {
    this.checkLive();
    const slot = this.slotOfTerm(term);
    if (slot < 0 || seqs.length === 0) return;
    const s = this.slots;
    const t = slot * SLOT;
    const pool = this.pool;
    const had = s[t + HAD]!;
    let k = seqs.length - 1;
    let found = 0;
    walk: for (let c = s[t + CHUNK]!, used = had > 1 ? chunkFill(had - 1) : 0; c !== NONE; c = pool[c]!, used = c === NONE ? 0 : pool[c + 1]!) {
      for (let i = used - 1; i >= 0; i--) {
        const at = c + HEADER + i * POSTING;
        const rel = pool[at]!;
        if (rel === REMOVED) continue;
        while (k >= 0 && seqs[k]! - this.base > rel) k--;
        if (k < 0) break walk;
        if (seqs[k]! - this.base !== rel) continue;
        pool[at] = REMOVED;
        found++;
        k--;
      }
    }
    if (had > 0 && s[t + FIRST] !== REMOVED) {
      while (k >= 0 && seqs[k]! - this.base > s[t + FIRST]!) k--;
      if (k >= 0 && seqs[k]! - this.base === s[t + FIRST]) {
        s[t + FIRST] = REMOVED;
        found++;
      }
    }
    if (found > 0) {
      const id = s[t + ID]!;
      this.removed.set(id, (this.removed.get(id) ?? 0) + found);
    }
  }

  /** Live postings of `term` in this segment. */
  count(term: string, maxSeq = Number.MAX_SAFE_INTEGER): number {
    this.checkLive();
    const slot = this.slotOfTerm(term);
    if (slot < 0) return 0;
    // Postings above maxSeq are the newest, in the newest chunks: only those are walked.
    let above = 0;
    const s = this.slots;
    const pool = this.pool;
    const limit = maxSeq - this.base;
    const t = slot * SLOT;
    const had = s[t + HAD]!;
    walk: {
      for (let c = s[t + CHUNK]!, used = had > 1 ? chunkFill(had - 1) : 0; c !== NONE; c = pool[c]!, used = c === NONE ? 0 : pool[c + 1]!) {
        for (let i = used - 1; i >= 0; i--) {
          const rel = pool[c + HEADER + i * POSTING]!;
          if (rel === REMOVED) continue;
          if (rel <= limit) break walk;
          above++;
        }
      }
      const first = s[t + FIRST]!;
      if (had > 0 && first !== REMOVED && first > limit) above++;
    }
    return this.live(t) - above;
  }

  /**
   * Calls `visit` with `term`'s postings with seq ≤ `maxSeq`, newest first, at most `cap` of them; returns how many
   * it visited. Reads without building posting objects (recall's hot path).
   */
  forNewest(term: string, cap: number, maxSeq: number, visit: PostingVisitor): number {
    this.checkLive();
    const slot = this.slotOfTerm(term);
    if (slot < 0 || cap <= 0) return 0;
    const s = this.slots;
    const pool = this.pool;
    const t = slot * SLOT;
    const had = s[t + HAD]!;
    let n = 0;
    for (let c = s[t + CHUNK]!, used = had > 1 ? chunkFill(had - 1) : 0; c !== NONE; c = pool[c]!, used = c === NONE ? 0 : pool[c + 1]!) {
      for (let i = used - 1; i >= 0; i--) {
        const at = c + HEADER + i * POSTING;
        const rel = pool[at]!;
        if (rel === REMOVED) continue;
        const seq = this.base + rel;
        if (seq > maxSeq) continue;
        const tfLen = pool[at + 1]!;
        visit(seq, tfLen & 0xffff, tfLen >>> 16);
        if (++n === cap) return n;
      }
    }
    const first = s[t + FIRST]!;
    if (had > 0 && first !== REMOVED && this.base + first <= maxSeq) {
      const tfLen = s[t + FIRST_TF_LEN]!;
      visit(this.base + first, tfLen & 0xffff, tfLen >>> 16);
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
    this.checkLive();
    const terms = this.words.length;
    // `order`: the live terms' slots in identity order.
    const order = this.sortedLiveTerms();
    const n = order.length;
    const s = this.slots;
    const rank = new Int32Array(terms).fill(-1);
    const counts = new Int32Array(n);
    const large = new Uint8Array(n);
    const words: (string | undefined)[] = new Array(n);
    // What the passes below need of each term, read from its slot once (one cache line each, in hash order) into
    // arrays by rank: identity, id, first posting; and by id, its newest chunk and how many postings that holds.
    const idents = new Int32Array(n * 3);
    const ids = new Int32Array(n);
    const firsts = new Int32Array(n);
    const firstTfLens = new Int32Array(n);
    const newest = new Int32Array(terms);
    const newestFill = new Int32Array(terms);
    let buckets = 0;
    let larges = 0;
    let bucketValueBytes = 0;
    let largeBytes = 0;
    for (let r = 0, last = -1; r < n; r++) {
      const t = order[r]! * SLOT;
      const id = s[t + ID]!;
      const h1 = s[t]!;
      idents[r * 3] = h1;
      idents[r * 3 + 1] = s[t + 1]!;
      idents[r * 3 + 2] = s[t + 2]!;
      ids[r] = id;
      firsts[r] = s[t + FIRST]!;
      firstTfLens[r] = s[t + FIRST_TF_LEN]!;
      const had = s[t + HAD]!;
      newest[id] = s[t + CHUNK]!;
      newestFill[id] = had > 1 ? chunkFill(had - 1) : 0;
      rank[id] = r;
      words[r] = this.words[id];
      const live = this.live(t);
      counts[r] = live;
      const bucket = bucketOf(h1);
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
      const bucket = bucketOf(idents[first * 3]!);
      let end = first + 1;
      while (end < n && bucketOf(idents[end * 3]!) === bucket) end++;
      keyAt = writeBucketKey(keys, keyAt, this.segment, bucket);
      keyEnds[p] = keyAt;
      writeU32(values, valueAt, end - first);
      let postingAt = valueAt + postingsStart(end - first);
      for (let r = first; r < end; r++) {
        const entry = valueAt + entryAt(r - first);
        writeU32(values, entry, idents[r * 3]!);
        writeU32(values, entry + 4, idents[r * 3 + 1]!);
        writeU32(values, entry + 8, idents[r * 3 + 2]!);
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
      keyAt = writeLargeKey(keys, keyAt, this.segment, idents[r * 3]!, idents[r * 3 + 1]!, idents[r * 3 + 2]!);
      keyEnds[p] = keyAt;
      putRanks[p * 2] = r;
      putRanks[p * 2 + 1] = r + 1;
      putOfRank[r] = p;
      p++;
    }
    // The postings, each written at its term's cursor. Each term's first posting (its oldest) opens its block; then
    // one pass over the chunks in the order they were allocated — a term's in ascending order: sequential reads,
    // where walking each term's chunks in block order was a miss per chunk. A chunk is full unless it is its term's
    // newest (`newest`, `newestFill`).
    const cursor = new Float64Array(terms);
    for (let r = 0; r < n; r++) {
      let at = starts[r]!;
      const first = firsts[r]!;
      if (first !== REMOVED) {
        const tfLen = firstTfLens[r]!;
        writePosting(values, at, this.base + first, tfLen & 0xffff, tfLen >>> 16);
        at += POSTING_BYTES;
      }
      cursor[ids[r]!] = at;
    }
    const pool = this.pool;
    for (let c = 0; c < this.poolUsed; c += HEADER + pool[c + 1]! * POSTING) {
      const id = pool[c + 2]!;
      if (rank[id] === -1) continue;
      const used = newest[id] === c ? newestFill[id]! : pool[c + 1]!;
      let at = cursor[id]!;
      for (let i = 0; i < used; i++) {
        const q = c + HEADER + i * POSTING;
        const rel = pool[q]!;
        if (rel === REMOVED) continue;
        const tfLen = pool[q + 1]!;
        writePosting(values, at, this.base + rel, tfLen & 0xffff, tfLen >>> 16);
        at += POSTING_BYTES;
      }
      cursor[id] = at;
    }
    const subjects: (string | undefined)[] = new Array(n);
    for (const [id, name] of this.subjectNames) if (rank[id] !== -1) subjects[rank[id]!] = name;
    return new SegmentBlocks(puts, buckets, keys, keyEnds, values, valueEnds, putRanks, putOfRank, large, starts, counts, words, subjects, idents);
  }

  /**
   * The slots of the terms with live postings, ascending by identity (h1, h2, shape as unsigned numbers): a stable
   * radix sort on h1 (three passes of 11 bits; a comparison sort of the segment's ~70k terms was ~15 ms a seal),
   * then slots sharing an h1 (a few per segment) are put in order by the rest of their identity.
   */
  private sortedLiveTerms(): Int32Array {
    const s = this.slots;
    const slots = this.mask + 1;
    // One pass over the table (sequential), each live term's slot and h1 side by side, so the passes read compact
    // arrays instead of a line of the table per term.
    let order = new Int32Array(this.words.length);
    let h1s = new Int32Array(this.words.length);
    let n = 0;
    const anyRemoved = this.removed.size > 0;
    for (let i = 0; i < slots; i++) {
      const t = i * SLOT;
      if (s[t + ID] === EMPTY || (anyRemoved && this.live(t) === 0)) continue;
      order[n] = i;
      h1s[n++] = s[t]!;
    }
    order = order.subarray(0, n);
    h1s = h1s.subarray(0, n);
    let other = new Int32Array(n);
    let otherH1s = new Int32Array(n);
    const counts = new Int32Array(RADIX);
    for (let shift = 0; shift < 32; shift += RADIX_BITS) {
      counts.fill(0);
      for (let i = 0; i < n; i++) counts[(h1s[i]! >>> shift) & (RADIX - 1)]!++;
      for (let d = 0, at = 0; d < RADIX; d++) {
        const c = counts[d]!;
        counts[d] = at;
        at += c;
      }
      for (let i = 0; i < n; i++) {
        const h1 = h1s[i]!;
        const to = counts[(h1 >>> shift) & (RADIX - 1)]!++;
        other[to] = order[i]!;
        otherH1s[to] = h1;
      }
      let t = order;
      order = other;
      other = t;
      t = h1s;
      h1s = otherH1s;
      otherH1s = t;
    }
    const unsigned = (i: number): number => s[i]! >>> 0;
    const byIdentity = (x: number, y: number): number =>
      unsigned(x * SLOT) - unsigned(y * SLOT) || unsigned(x * SLOT + 1) - unsigned(y * SLOT + 1) || unsigned(x * SLOT + 2) - unsigned(y * SLOT + 2);
    for (let i = 0; i < n; ) {
      let j = i + 1;
      while (j < n && h1s[j] === h1s[i]) j++;
      if (j - i > 1) order.subarray(i, j).sort(byIdentity);
      i = j;
    }
    return order;
  }

  /** The index of `term`'s block in the last `blocks()` answer, or -1. */
  blockIndexOf(term: string): number {
    this.checkLive();
    const slot = this.slotOfTerm(term);
    return slot < 0 || this.rank === undefined ? -1 : this.rank[this.slots[slot * SLOT + ID]!] ?? -1;
  }
}

/** Postings in a term's newest chunk when `chunked` of its postings are in chunks (≥ 1; see FIRST_CHUNK). */
function chunkFill(chunked: number): number {
  if (chunked <= 2) return chunked;
  if (chunked <= 6) return chunked - 2;
  if (chunked <= 14) return chunked - 6;
  return ((chunked - 15) & (MAX_CHUNK - 1)) + 1;
}

/** The capacity of a term's newest chunk when `chunked` of its postings are in chunks (≥ 1). */
function chunkCapacity(chunked: number): number {
  return chunked <= 2 ? 2 : chunked <= 6 ? 4 : chunked <= 14 ? 8 : MAX_CHUNK;
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

/**
 * The arrays of the largest segment released and not yet reused (`SegmentPostings.release`): one set per process,
 * whatever store released it (they are only memory), so an idle process keeps at most one segment's worth.
 */
let spareArrays: { slots: Int32Array; slotOf: Int32Array; pool: Int32Array } | undefined;
/** What a released segment's arrays become. */
const RELEASED = new Int32Array(0);

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
