/**
 * A term's newest postings across the merged segments, decoded, in memory: what a recall at 100k–1M facts read from
 * LMDB for every query word.
 *
 * Why: below the open segment a term's postings are one bucket lookup per merged segment holding it (plus one for a
 * large block), each a B-tree descent into a table that grows with the store, a copy of a few hundred bytes to a few
 * KB and a directory scan. At 1M facts a free-text recall spent ~20 µs of its ~105 there (a word outside the
 * commonest few hundred sits in up to 15 segments), where a 10k store, all of it in the open segment, spent nothing.
 * Merged blocks do not change once their merge has committed (only `forget` and `prune` rewrite them, through
 * `PostingIndex.remove`), so a term's newest postings below the open segment are the same for every reader until the
 * next merge: they are kept here.
 *
 * An entry holds the newest MERGED_CACHE_POSTINGS postings of a term in the segments up to `top` (all of them when it
 * has fewer), newest first, and answers readers whose merged range ends at `top` and who need at most that many.
 * When a merge commits, entries move to the new `top`, each taking the merged segment's postings of its term first
 * (from the blocks just written, in memory), so no term is read again. While the cache has followed every merge
 * since the store had none (`complete`: a store loaded in this process), it holds every word and subject term (what
 * free-text and subject-filtered recalls ask for) that has merged postings, and one it lacks has none. Otherwise (a
 * store reopened with merged segments, or after words' and subjects' entries alone passed MAX_BYTES and every entry
 * was dropped — other terms' entries go first, `dropUnnamed`), and for other terms,
 * a term is read from the blocks on first use and kept — or ahead of use, by a reopened store's warming
 * (`warm-up.ts`, `PostingIndex.warmMerged`).
 *
 * Entries are derived data, never stored: invalidated for a term on forget, all dropped on a failed batch and at open.
 */
import type { SegmentBlocks } from './segment.ts';
import { POSTING_BYTES } from './codec.ts';
import { termParts } from './records.ts';
import { hashTerm, IdentityMap, TERM_HASH } from './term-table.ts';

/** Word and subject terms (`w:…`, `s:…`, see `records.ts`): the ones a segment's blocks name by string. */
export const isNamedTerm = (term: string): boolean => (term.charCodeAt(0) === 119 || term.charCodeAt(0) === 115) && term.charCodeAt(1) === 58;

/** Postings kept per term: recall's per-term cap (TERM_CAP in `recall.ts`); smaller caps are served too. */
export const MERGED_CACHE_POSTINGS = 96;
/** Memory the entries may take before they are all dropped (~16 bytes a posting plus the Map's entry). */
const MAX_BYTES = 64 * 2 ** 20;
const ENTRY_OVERHEAD = 150;

export interface MergedPostings {
  /** The highest merged segment the entry covers. */
  top: number;
  count: number;
  /**
   * Per posting, newest first from `start`: its sequence, then tf × 256 + document length (as blocks store them,
   * ≤ 255 each). An entry holding MERGED_CACHE_POSTINGS is a ring: the i-th newest is at (start + i) % count, so a
   * merge writes only its own postings over the oldest ones instead of shifting the rest. Otherwise start is 0.
   */
  postings: Float64Array;
  start: number;
  /** A word's or subject's identity (`hashTerm`), by which a merge finds its entry (`named`); 0 for other terms. */
  readonly h1: number;
  readonly h2: number;
  readonly shape: number;
}

/**
 * A reader taking an entry's `take` newest postings itself (`PostingIndex.forNewest`): the i-th newest is at
 * ((start + i) % count) × 2 of `postings` (its sequence, then tf × 256 + length). At 1M facts a query word brings
 * ~100 postings from here, and a call per posting through the caller's closures cost more than summing them in a loop.
 */
export type MergedVisitor = (postings: Float64Array, start: number, count: number, take: number) => void;

/** `top` of an entry that answers no reader (see `invalidate`). */
const STALE = -2;
/** `top` of an entry `advance` is moving to the new top (it answers no reader meanwhile). */
const MOVING = -3;
const NO_POSTINGS = new Float64Array(0);
const entryBytes = (term: string, count: number): number => ENTRY_OVERHEAD + term.length * 2 + count * 16;

export class MergedPostingsCache {
  private readonly entries = new Map<string, MergedPostings>();
  /**
   * The word and subject entries again, by identity: a merge names those terms by identity and a string new to its
   * segment, and `entries.get` by that string hashed it and compared it with the stored key (~1% of the load). Two
   * named terms whose identities collide in all 96 bits share a block in every segment; here the one filed last is
   * found for both, and extended with that shared block, as the other's `rankOf` would extend it.
   */
  private readonly named = new IdentityMap<MergedPostings>();
  private bytes = 0;
  /** Every word with merged postings has an entry (see the header). */
  private complete = false;
  /** Filled by `collect` (reads are synchronous), then copied to the entry's exact size. */
  private readonly collecting = new Float64Array(MERGED_CACHE_POSTINGS * 2);
  private collected = 0;

  /** Drops every entry; `complete` when there are no merged segments yet. */
  reset(complete: boolean): void {
    this.entries.clear();
    this.named.clear();
    this.bytes = 0;
    this.complete = complete;
  }

  /**
   * Whether warming (`PostingIndex.warmMerged`) may add entries: up to half the memory budget. The rest is for what
   * queries ask for later (subject and predicate lists, words not warmed) and for warmed entries growing as later
   * merges extend them toward MERGED_CACHE_POSTINGS: past MAX_BYTES every entry is dropped.
   */
  roomToWarm(): boolean {
    return this.bytes < MAX_BYTES / 2;
  }

  /** The entry for `term` if it covers exactly the merged segments up to `top`. */
  get(term: string, top: number): MergedPostings | undefined {
    const e = this.entries.get(term);
    return e !== undefined && e.top === top ? e : undefined;
  }

  /** True when `term` certainly has no merged postings: a word or subject term without an entry, while complete. */
  lacks(term: string): boolean {
    return this.complete && isNamedTerm(term) && !this.entries.has(term);
  }

  /** Starts collecting a term's postings (newest first, through `collect`, at most MERGED_CACHE_POSTINGS). */
  begin(): void {
    this.collected = 0;
  }

  readonly collect = (seq: number, tf: number, len: number): void => {
    const i = this.collected++ * 2;
    this.collecting[i] = seq;
    this.collecting[i + 1] = tf * 256 + len;
  };

  /** Files what was collected since `begin` as `term`'s entry for the segments up to `top`. */
  finish(term: string, top: number): MergedPostings {
    return this.file(term, entryFor(term, top, this.collected, this.collecting.slice(0, this.collected * 2)));
  }

  /**
   * A merge has committed: the merged segments now end at `newTop` instead of `oldTop`, and `segment` is the one
   * merged. Entries move to `newTop`, a word's with the segment's newest postings first; a word in `changed` (its
   * block was rewritten after the blocks were built: forget) is dropped instead.
   *
   * Entries are extended in place (a full entry is a ring: the merge writes its own postings over the oldest): a
   * new array and a Map delete and set per term and merge were most of a merge's cost on the load path (~130 ms a
   * segment, against ~45 now), and their garbage outlived the young generation. Word and subject entries find their block by the term string the segment names them by
   * (no hashing); other terms, and a named one the segment did not name (it holds none, or a term sharing its
   * identity), by `rankOf`.
   */
  advance(oldTop: number, newTop: number, segment: SegmentBlocks, rankOf: (term: string) => number, changed: ReadonlySet<string>): void {
    // Entries for the segments up to oldTop move to newTop; a named term's waits (MOVING) for the walk over the
    // segment's named blocks. Others are dropped.
    // (`forEach`, not `for … of` over entries: that built a [term, entry] pair per entry and pass, ~100k a merge.)
    this.entries.forEach((e, term) => {
      if (e.top !== oldTop || changed.has(term)) {
        // (Invalidating re-files a stale mark, which this walk then visits again and leaves.)
        if (e.top !== STALE) this.invalidate(term);
        return;
      }
      if (isNamedTerm(term)) e.top = MOVING;
      else {
        const r = rankOf(term);
        if (r < 0) e.top = newTop;
        else this.extend(term, e, segment.block(r), newTop);
      }
    });
    segment.forEachNamedBlock((term, block, h1, h2, shape) => {
      const e = this.named.get(h1, h2, shape);
      if (e === undefined) {
        // While complete, every word and subject term of the merged segment gets an entry. (Checked per term:
        // extending may pass MAX_BYTES and drop everything, and then a new entry from this segment alone would lack
        // the older segments' postings.)
        if (this.complete && !changed.has(term)) this.file(term, withNewer(block, newTop, h1, h2, shape));
      } else if (e.top === MOVING) this.extend(term, e, block, newTop);
    });
    this.entries.forEach((e, term) => {
      if (e.top !== MOVING) return;
      const r = rankOf(term);
      if (r < 0) e.top = newTop;
      else this.extend(term, e, segment.block(r), newTop);
    });
    for (const term of changed) this.invalidate(term);
  }

  /** Moves `e` (filed under `term`) to `top` with `block`'s postings (ascending, `codec.ts`) before its own. */
  private extend(term: string, e: MergedPostings, block: Buffer, top: number): void {
    const fresh = Math.min(MERGED_CACHE_POSTINGS, block.length / POSTING_BYTES);
    const count = Math.min(MERGED_CACHE_POSTINGS, e.count + fresh);
    let postings = e.postings;
    let start: number;
    if (e.count === MERGED_CACHE_POSTINGS) {
      // A full ring: the fresh postings take the oldest ones' places, just before the newest.
      start = e.start - fresh;
      if (start < 0) start += MERGED_CACHE_POSTINGS;
    } else {
      // Growing: a new array, the fresh postings first, then the old ones (which are in order from 0).
      start = 0;
      const old = postings;
      postings = new Float64Array(count * 2);
      for (let i = (count - fresh) * 2 - 1; i >= 0; i--) postings[fresh * 2 + i] = old[i]!;
    }
    for (let i = 0, at = block.length - POSTING_BYTES, p = start; i < fresh; i++, at -= POSTING_BYTES) {
      postings[p * 2] = seqAt(block, at);
      postings[p * 2 + 1] = block[at + 6]! * 256 + block[at + 7]!;
      if (++p === count) p = 0;
    }
    this.bytes += (count - e.count) * 16;
    e.top = top;
    e.count = count;
    e.postings = postings;
    e.start = start;
    if (this.bytes > MAX_BYTES) {
      this.dropUnnamed();
      if (this.bytes > MAX_BYTES) {
        this.reset(false);
        this.file(term, e);
      }
    }
  }

  /**
   * `term`'s merged blocks changed (forget): its entry goes — while complete, it stays as a stale mark, so the word
   * is read again on its next use instead of being taken for one without merged postings.
   */
  invalidate(term: string): void {
    const old = this.entries.get(term);
    if (old !== undefined) this.drop(term, old);
    if (this.complete) this.file(term, entryFor(term, STALE, 0, NO_POSTINGS));
  }

  /**
   * Past the budget, the entries of terms other than words and subjects go first (subject-and-predicate lists, object
   * entities: read on first use, and never taken as absent by `lacks`), so a complete cache stays complete and a
   * long-serving store does not fall back to reading every query word from its blocks. Only when words and subjects
   * alone pass the budget does every entry go (`reset(false)`).
   */
  private dropUnnamed(): void {
    this.entries.forEach((e, term) => {
      if (!isNamedTerm(term)) this.drop(term, e);
    });
  }

  private drop(term: string, e: MergedPostings): void {
    this.bytes -= entryBytes(term, e.count);
    this.entries.delete(term);
    if (isNamedTerm(term) && this.named.get(e.h1, e.h2, e.shape) === e) this.named.delete(e.h1, e.h2, e.shape);
  }

  private file(term: string, entry: MergedPostings): MergedPostings {
    const old = this.entries.get(term);
    if (old !== undefined) this.drop(term, old);
    const size = entryBytes(term, entry.count);
    if (this.bytes + size > MAX_BYTES) this.dropUnnamed();
    if (this.bytes + size > MAX_BYTES) this.reset(false);
    this.entries.set(term, entry);
    if (isNamedTerm(term)) this.named.set(entry.h1, entry.h2, entry.shape, entry);
    this.bytes += size;
    return entry;
  }
}

/** An entry for segments up to `top` from `block`'s postings (ascending, `codec.ts`), newest first. */
function withNewer(block: Buffer, top: number, h1: number, h2: number, shape: number): MergedPostings {
  const count = Math.min(MERGED_CACHE_POSTINGS, block.length / POSTING_BYTES);
  const postings = new Float64Array(count * 2);
  for (let i = 0, at = block.length - POSTING_BYTES; i < count; i++, at -= POSTING_BYTES) {
    postings[i * 2] = seqAt(block, at);
    postings[i * 2 + 1] = block[at + 6]! * 256 + block[at + 7]!;
  }
  return { top, count, postings, start: 0, h1, h2, shape };
}

/** An entry of `term` (its identity computed when it is a word or subject: see `named`). */
function entryFor(term: string, top: number, count: number, postings: Float64Array): MergedPostings {
  if (!isNamedTerm(term)) return { top, count, postings, start: 0, h1: 0, h2: 0, shape: 0 };
  const { kind, a, b } = termParts(term);
  const h = hashTerm(kind, a, b, TERM_HASH);
  return { top, count, postings, start: 0, h1: h[0]!, h2: h[1]!, shape: h[2]! };
}

/** The sequence of the posting at `at` (6 bytes, big-endian; see `codec.ts`). */
function seqAt(block: Uint8Array, at: number): number {
  return ((block[at]! << 8) | block[at + 1]!) * 0x100000000 + ((block[at + 2]! << 24) >>> 0) + ((block[at + 3]! << 16) | (block[at + 4]! << 8) | block[at + 5]!);
}
