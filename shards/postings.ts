/**
 * Posting lists (term → the facts that mention it), kept so that loading is fast and a query's work does not grow
 * with the store.
 *
 * Why this shape: one LMDB put per (term, fact) costs ~1.5 µs of JS→native work and, at 1M facts, every put lands on
 * a different B-tree page, so each 1000-fact transaction copied ~10k pages; we measured ~30k facts/s that way. So
 * postings of the newest *segment* (SEGMENT_SEQS log sequences) live only in memory, and when the log crosses a
 * segment boundary the whole segment is merged into LMDB as one block per (segment, term). The open segment is
 * derived data: at start-up it is rebuilt from the facts of that one segment (bounded, ≤ SEGMENT_SEQS facts), never
 * from the whole store. Segment boundaries depend only on sequence numbers, so the bytes do not depend on how the
 * log was cut into batches.
 *
 * Blocks are keyed segment first (`block-layout.ts`): a segment's small blocks packed into buckets by the top bits
 * of the term's hash, its large blocks under their own key. A merge's keys are all above every stored key, so
 * written in key order they are LMDB appends (MDB_APPEND) — no search, no split, no old page copied — instead of
 * inserts spread over a tree that grows with the store (store format 2 keyed blocks term first within epochs of 8
 * segments, one put per (term, segment); those puts were the largest single cost of the load). The price is on the
 * read side: a term's blocks are one bucket lookup per segment (plus one for a large block) instead of one range per
 * epoch. Two terms whose identities (`hashTerm`) collide in all 96 bits within one segment would share its block:
 * an extra recall candidate, the same on every replica.
 *
 * Reads go newest first (open segment, then blocks by descending segment) and callers cap how many postings they
 * take per term: a query's work is bounded by the cap and the number of segments, at the price of seeing only a
 * term's newest mentions. Below the open segment a term's newest postings are kept decoded in memory once read, and
 * follow each merge (`merged-postings.ts`), so a query word costs no block lookups however many segments it is in. Document frequencies are counters (`df` table) updated at merge and on forget, plus the
 * open segment's counts; a reader that has found a word's df postings stops (older segments hold none). A word's
 * df record also marks which segments hold a block of it, so a reader looks only in those.
 *
 * The merge is spread over the first MERGE_SPAN sequences of the next segment, so no one commit (and every write
 * queued behind it) carries a whole segment's blocks. While the segment is merging it is `sealed`: its blocks are
 * built once (puts in key order, `SegmentPostings.blocks`), and after applying the k-th sequence of the new segment
 * the first ⌈puts·(k+1)/MERGE_SPAN⌉ are written. How far the merge got depends only on sequence numbers, so the bytes
 * still do not depend on batching; the count written is part of the stored state (`mergedTerms`), so a restart
 * resumes at the same put. A forget finishes the merge first (the blocks were built before it), and a sequence
 * jumping past the window finishes it at once.
 *
 * Reads racing a merge: until a merging batch commits, readers cannot see its blocks yet, so the sealed segment
 * stays readable from memory (and its blocks are skipped) until the merge is complete and committed.
 */
import type { Database } from 'lmdb';
import type { BlockTable } from './tables.ts';
import { decodePostings, encodePostings, POSTING_BYTES, type PostingRun } from './codec.ts';
import type { FactTerms } from './fact-terms.ts';
import { termParts } from './records.ts';
import { bucketOf, bucketWithout, BUCKET_KEY_BYTES, findInBucket, LARGE, LARGE_KEY_BYTES, readU32, writeBucketKey, writeLargeKey, writeU32, type BucketHit } from './block-layout.ts';
import { SegmentPostings, type Posting, type PostingVisitor, type SegmentBlocks, type SegmentSize } from './segment.ts';
import { hashTerm, IdentityMap, TERM_HASH } from './term-table.ts';
import { MERGED_CACHE_POSTINGS, MergedPostingsCache, type MergedPostings, type MergedVisitor } from './merged-postings.ts';
import { FactWords } from './fact-words.ts';

export type { Posting } from './segment.ts';

/**
 * 65536: at 1M facts a rare word's postings sit in one block per segment, and reading them (a lookup per segment)
 * was most of what a recall at 1M did beyond one at 10k; twice the segment halves that, and the blocks written per
 * fact (a segment's distinct terms grow slower than its facts). The price: the open segment rebuilt at start-up is
 * up to 65536 facts (~0.5 s), and it and the segment being merged are held in memory.
 */
export const SEGMENT_SEQS = 65536;
/** df records `warmWords` reads per range. */
const WARM_RANGE = 64;
/** Sequences of a new segment over which the previous one is merged into LMDB. */
export const MERGE_SPAN = 2048;
/** `mergedTerms` when no merge is under way. */
export const NO_MERGE = -1;
export const TERM_SEPARATOR = '\x1f';

/** Word terms carry text statistics; structural terms (subject, edge, identity lists) do not count toward df. */
export function isWordTerm(term: string): boolean {
  return term.charCodeAt(0) === 119 /* w */ && term.charCodeAt(1) === 58 /* : */;
}

export function segmentOf(seq: number): number {
  return Math.floor(seq / SEGMENT_SEQS);
}


const openSegmentFor = (segment: number, expected?: SegmentSize): SegmentPostings => new SegmentPostings(segment, segment * SEGMENT_SEQS, expected);

/** A segment being merged: its blocks (in key order), the first `written` of them already put. */
interface Sealed {
  readonly postings: SegmentPostings;
  readonly blocks: SegmentBlocks;
  written: number;
}

const APPEND = { append: true } as const;

export class PostingIndex {
  private open = openSegmentFor(0);
  /** The segment being merged (or merged but not yet committed), readable from memory meanwhile. */
  private sealed: Sealed | undefined;
  /** Keys being looked up, reused (reads are synchronous). */
  private readonly bucketKey = Buffer.alloc(BUCKET_KEY_BYTES);
  private readonly largeKey = Buffer.alloc(LARGE_KEY_BYTES);
  private readonly hit: BucketHit = { entry: -1, start: 0, end: 0 };
  /** The segment whose blocks `writeBlocks` is putting (its words' df records get its bit). */
  private merging = 0;
  private readonly addDfOf = (word: string, postings: number, h1: number, h2: number, shape: number): void => this.addDf(word, postings, this.merging, h1, h2, shape);
  /**
   * The write path's df records: what it last wrote per word, so a merge reads the `df` table only for words it has
   * not seen (each merge updates most of a segment's vocabulary). Never used by readers, whose snapshot may be
   * older; dropped by `reset` (open, and after a failed batch) and when it grows past DF_CACHE_WORDS.
   */
  private readonly dfWritten = new Map<string, Buffer>();
  /**
   * The same records by the word's identity (`hashTerm`), for the merge's updates: the segment names each word by
   * its identity and a string new to that segment, and a `Map` lookup by that string hashed it and compared it with
   * the stored key. The word is kept beside its record and compared on a hit, so words whose identities collide
   * each keep their own record (the next `addDf` of the other reads it by string).
   */
  private readonly dfByIdentity = new IdentityMap<HeldDf>();
  /** Terms' decoded postings in the committed merged segments (read side, `merged-postings.ts`). */
  private readonly merged = new MergedPostingsCache();
  /** Terms whose merged blocks a batch not yet committed has rewritten (forget): readers skip `merged` for them. */
  private readonly removing = new Set<string>();
  /** Every fact's words as short hashes (`fact-words.ts`): subject-filtered recall bounds its candidates with them. */
  readonly words = new FactWords();
  /**
   * Merges finished in memory whose batch has not committed yet, oldest first (a batch may cross several segment
   * boundaries): `merged` takes them in at commit, and is not used meanwhile.
   */
  private readonly uncommittedMerges: Sealed[] = [];
  /**
   * Terms forgotten since `merged` last took in a merge: the blocks built at seal may still hold their postings, so
   * their entries are invalidated instead of extended.
   */
  private readonly removedSinceAdvance = new Set<string>();

  constructor(
    private readonly blocks: BlockTable,
    private readonly dfTable: Database<Buffer, string>,
  ) {}

  /**
   * Starts (or restarts) with an empty open segment for `seq`'s segment; the caller re-adds its facts. When the
   * stored state says the previous segment was part-merged (`mergedTerms` ≥ 0), `previous` re-adds that segment's
   * postings, and the merge resumes after the `mergedTerms` blocks already written.
   */
  reset(seq: number, mergedTerms: number, previous: (add: (terms: FactTerms, seq: number) => void) => void): void {
    const segment = segmentOf(seq);
    this.open = openSegmentFor(segment);
    this.sealed = undefined;
    this.dfWritten.clear();
    this.dfByIdentity.clear();
    this.removing.clear();
    this.removedSinceAdvance.clear();
    this.uncommittedMerges.length = 0;
    const part = mergedTerms !== NO_MERGE && segment > 0;
    // With no merged segment yet, the decoded postings follow every merge from the first (`complete`).
    this.merged.reset(segment - (part ? 1 : 0) === 0);
    // The caller re-adds the open segment's facts; older ones are read from their records when first needed.
    this.words.reset(segment * SEGMENT_SEQS);
    if (!part) return;
    const postings = openSegmentFor(segment - 1);
    previous((terms, s) => postings.addFact(terms, s));
    this.sealed = { postings, blocks: postings.blocks(), written: mergedTerms };
  }

  /** Blocks of the merging segment written so far, or NO_MERGE: stored with every batch's state. */
  mergedTerms(): number {
    const sealed = this.sealed;
    return sealed === undefined || sealed.written === sealed.blocks.count ? NO_MERGE : sealed.written;
  }

  /** A batch has committed: once the merge is complete, its blocks are readable and memory can let go. */
  committed(): void {
    const done = this.uncommittedMerges;
    if (this.sealed !== undefined && this.sealed.written === this.sealed.blocks.count) {
      done.push(this.sealed);
      this.sealed = undefined;
    }
    // Readers now take the merged segments from their blocks: the decoded postings take them in too.
    const last = (this.sealed?.postings.segment ?? this.open.segment) - 1;
    for (let i = 0; i < done.length; i++) {
      const top = i + 1 < done.length ? done[i + 1]!.postings.segment - 1 : last;
      const postings = done[i]!.postings;
      this.merged.advance(postings.segment - 1, top, done[i]!.blocks, (term) => postings.blockIndexOf(term), this.removedSinceAdvance);
    }
    if (done.length > 0) this.removedSinceAdvance.clear();
    // Those segments are read from their blocks now: their arrays may serve the next open segment.
    for (const d of done) d.postings.release();
    done.length = 0;
    for (const term of this.removing) this.merged.invalidate(term);
    this.removing.clear();
  }

  /**
   * Before applying `seq`: a later segment seals the open one (finishing any earlier merge first); within the
   * merge window, writes the blocks due by `seq`.
   */
  rollTo(seq: number): void {
    const segment = segmentOf(seq);
    if (segment > this.open.segment) {
      this.finishMerge();
      if (this.sealed !== undefined) this.uncommittedMerges.push(this.sealed);
      const open = this.open;
      this.sealed = { postings: open, blocks: open.blocks(), written: 0 };
      this.open = openSegmentFor(segment, open.size());
      if (segment > open.segment + 1) this.finishMerge(); // jumped past the window
    }
    const sealed = this.sealed;
    if (sealed === undefined || sealed.written === sealed.blocks.count) return;
    const k = seq - segment * SEGMENT_SEQS;
    const due = k + 1 >= MERGE_SPAN ? sealed.blocks.count : Math.ceil((sealed.blocks.count * (k + 1)) / MERGE_SPAN);
    this.writeBlocks(sealed, due);
  }

  private finishMerge(): void {
    if (this.sealed !== undefined) this.writeBlocks(this.sealed, this.sealed.blocks.count);
  }

  /** Appends the puts up to (not including) `end`, folding their words' counts into `df`. */
  private writeBlocks(sealed: Sealed, end: number): void {
    const blocks = sealed.blocks;
    this.merging = sealed.postings.segment;
    for (let p = sealed.written; p < end; p++) {
      // lmdb-js answers false (its types say void) when the key is not above the last one: never drop a block.
      const appended: unknown = this.blocks.putSync(blocks.key(p), blocks.value(p), APPEND);
      if (appended === false) throw new Error(`index put ${p} of segment ${sealed.postings.segment} is not above the stored blocks`);
      blocks.forEachWord(p, this.addDfOf);
    }
    if (end > sealed.written) sealed.written = end;
  }

  /** Adds the postings of a fact created at `seq` (ascending order within the open segment), and its words. */
  addFact(terms: FactTerms, seq: number): void {
    const fresh = this.open.addFact(terms, seq);
    // A word is filed by hash when it is first posted in a segment (rarely, and no fact's words escape it: each was
    // new to the open segment once, in this process), not for every word of every fact.
    if (fresh > 0) this.words.fileWords(terms, this.open.freshWords, fresh);
    this.words.add(seq, terms);
  }

  /**
   * Removes forgotten facts' postings (forget, prune): `byTerm` maps each term to the facts' sequences, ascending.
   * Each term's postings in a segment are walked or rewritten once for all of its facts there — one fact at a time,
   * a word most of them share was walked (open segment) or decoded and re-put (merged) once per fact: quadratic,
   * 8 s for a prune of 50k facts (review 11b, finding 9). Stores the same bytes as removing them one by one.
   */
  removeAll(byTerm: ReadonlyMap<string, readonly number[]>): void {
    if (byTerm.size === 0) return;
    // The merging segment's blocks were built before this forget: write them all, then edit like any block.
    this.finishMerge();
    for (const [term, seqs] of byTerm) {
      for (let i = 0; i < seqs.length; ) {
        const segment = segmentOf(seqs[i]!);
        let j = i + 1;
        while (j < seqs.length && segmentOf(seqs[j]!) === segment) j++;
        const inSegment = i === 0 && j === seqs.length ? seqs : seqs.slice(i, j);
        i = j;
        // Its blocks are written, but readers take its postings from memory until the batch commits.
        if (this.sealed?.postings.segment === segment) this.sealed.postings.removeAll(term, inSegment);
        if (segment === this.open.segment) this.open.removeAll(term, inSegment);
        else this.removeFromBlocks(term, segment, inSegment);
      }
    }
  }

  /** Removes a merged segment's postings of `term` for `seqs` (ascending): one read and one write of its block. */
  private removeFromBlocks(term: string, segment: number, seqs: readonly number[]): void {
    // Its merged block changes: the decoded copy goes now and again at commit (readers meanwhile use their snapshot).
    this.merged.invalidate(term);
    this.removing.add(term);
    this.removedSinceAdvance.add(term);
    const { kind, a, b } = termParts(term);
    const h = hashTerm(kind, a, b, TERM_HASH);
    const [h1, h2, shape] = [h[0]!, h[1]!, h[2]!];
    const bucketKey = Buffer.alloc(BUCKET_KEY_BYTES);
    writeBucketKey(bucketKey, 0, segment, bucketOf(h1));
    let bucket: Buffer | undefined = this.blocks.getBinary(bucketKey);
    if (bucket === undefined) return;
    const hit = findInBucket(bucket, h1, h2, shape, { entry: -1, start: 0, end: 0 });
    if (hit.entry < 0) return;
    let removed = 0;
    if (hit.start === LARGE) {
      const key = Buffer.alloc(LARGE_KEY_BYTES);
      writeLargeKey(key, 0, segment, h1, h2, shape);
      const bytes = this.blocks.getBinary(key);
      if (bytes === undefined) return;
      const run = decodePostings(bytes);
      const kept = withoutSeqs(run, seqs);
      removed = (run.length - kept.length) / 3;
      if (removed === 0) return;
      if (kept.length === 0) this.blocks.removeSync(key);
      else this.blocks.putSync(key, encodePostings(kept));
    } else {
      // A small term (fewer than LARGE_POSTINGS postings here): each removal rewrites the bucket in memory.
      for (const seq of seqs) {
        const at = findSeq(bucket, hit.start, hit.end, seq);
        if (at < 0) continue;
        removed++;
        bucket = bucketWithout(bucket, hit.entry, at);
        if (bucket === undefined) break;
        findInBucket(bucket, h1, h2, shape, hit);
        if (hit.entry < 0) break;
      }
      if (removed === 0) return;
      if (bucket === undefined) this.blocks.removeSync(bucketKey);
      else this.blocks.putSync(bucketKey, bucket);
    }
    if (isWordTerm(term)) this.addDf(term, -removed, undefined, h1, h2, shape);
  }

  /** Postings of `term`, newest first, at most `cap`, with seq ≤ `maxSeq` when given. */
  newest(term: string, cap: number, maxSeq = Number.MAX_SAFE_INTEGER): Posting[] {
    const out: Posting[] = [];
    this.forNewest(term, cap, maxSeq, (seq, tf, len) => out.push({ seq, tf, len }));
    return out;
  }

  /**
   * `newest` without building posting objects: calls `visit` for each; returns how many. With `visitMerged`, the
   * postings a decoded entry answers (`merged-postings.ts`) are handed over as one run instead.
   */
  forNewest(term: string, cap: number, maxSeq: number, visit: PostingVisitor, visitMerged?: MergedVisitor): number {
    let n = this.open.forNewest(term, cap, maxSeq, visit);
    const sealed = this.sealed?.postings;
    if (sealed !== undefined) n += sealed.forNewest(term, cap - n, maxSeq, visit);
    if (n >= cap) return n;
    return this.forMerged(term, cap, n, maxSeq, visit, visitMerged);
  }

  /**
   * `forNewest` for a reader that takes only postings older than `before` (and whose visitors still check it): the
   * same `cap` newest postings count, but when every posting in memory (the open segment and a sealed one) is newer
   * than `before`, they are counted instead of visited. A subject-filtered recall looking for its subject's older
   * facts among its query words' postings (`recall.ts`): in the bench's 1M store a common word's ~180 newest
   * postings are all in the open segment, newer than a busy subject's window, and visiting them one by one was ~10 µs
   * of the query.
   */
  forNewestBefore(term: string, cap: number, maxSeq: number, before: number, visit: PostingVisitor, visitMerged?: MergedVisitor): number {
    const sealed = this.sealed?.postings;
    if (before > (sealed ?? this.open).segment * SEGMENT_SEQS) return this.forNewest(term, cap, maxSeq, visit, visitMerged);
    let n = this.open.count(term, maxSeq);
    if (sealed !== undefined) n += sealed.count(term, maxSeq);
    if (n >= cap) return cap;
    return this.forMerged(term, cap, n, maxSeq, visit, visitMerged);
  }

  /** `forNewest` below the segments in memory, `n` of the `cap` postings having been found there. */
  private forMerged(term: string, cap: number, n: number, maxSeq: number, visit: PostingVisitor, visitMerged: MergedVisitor | undefined): number {
    const sealed = this.sealed?.postings;
    // Blocks exist for the segments below the open one; the sealed one (if any) was read from memory above.
    const top = Math.min(segmentOf(maxSeq), this.open.segment - 1);
    if (top < 0) return n;
    // The committed merged segments (below the sealed one, if any): when the reader sees all of them and needs no
    // more than an entry holds, the decoded entry answers (`merged-postings.ts`); a term being forgotten in a batch
    // not yet committed is read from the reader's own snapshot.
    const mergedTop = (sealed?.segment ?? this.open.segment) - 1;
    if (cap - n <= MERGED_CACHE_POSTINGS && segmentOf(maxSeq + 1) > mergedTop && this.mergedUsable(term)) {
      if (mergedTop < 0) return n;
      const entry = this.mergedEntry(term, mergedTop);
      if (entry === undefined) return n;
      const postings = entry.postings;
      const end = Math.min(entry.count, cap - n);
      if (visitMerged !== undefined) {
        visitMerged(postings, entry.start, entry.count, end);
        return n + end;
      }
      // Newest first from `start`, wrapping around (see `MergedPostings`).
      for (let i = 0, at = entry.start; i < end; i++) {
        const x = postings[at * 2 + 1]!;
        visit(postings[at * 2]!, x >>> 8, x & 255);
        if (++at === entry.count) at = 0;
      }
      return n + end;
    }
    return this.readBlocks(term, top, cap, n, maxSeq, sealed?.segment, visit);
  }

  /**
   * Whether the decoded entries may answer for `term` now: no finished merge awaits its commit (`merged` takes it in
   * then) and no batch in flight has rewritten the term's blocks (forget). A reader must also see every merged segment.
   */
  private mergedUsable(term: string): boolean {
    return this.uncommittedMerges.length === 0 && !this.removing.has(term);
  }

  /** `term`'s decoded entry for the merged segments up to `mergedTop`, read from the blocks on first use; undefined when it certainly has none. */
  private mergedEntry(term: string, mergedTop: number): MergedPostings | undefined {
    const entry = this.merged.get(term, mergedTop);
    if (entry !== undefined) return entry;
    if (this.merged.lacks(term)) return undefined;
    this.merged.begin();
    this.readBlocks(term, mergedTop, MERGED_CACHE_POSTINGS, 0, Number.MAX_SAFE_INTEGER, undefined, this.merged.collect);
    return this.merged.finish(term, mergedTop);
  }

  /**
   * Reads `term`'s merged postings into the decoded entries now, as a recall's first use of it would (`forNewest`:
   * the same read under the same conditions, so the same entry), so a reopened store's first queries find it there.
   * False once the entries have no room left to warm (`MergedPostingsCache.roomToWarm`).
   */
  warmMerged(term: string): boolean {
    if (!this.merged.roomToWarm()) return false;
    const mergedTop = (this.sealed?.postings.segment ?? this.open.segment) - 1;
    if (mergedTop >= 0 && this.mergedUsable(term)) this.mergedEntry(term, mergedTop);
    return true;
  }

  /**
   * Warms (`warmMerged`) the words of the df table in key order after `after`, either those whose df reaches a
   * query's per-word cap (`common`: every free-text query brings some) or the others, until `until` (a
   * `performance.now()` time). Returns where to go on from, whether the table is through, and whether the entries
   * ran out of room.
   */
  warmWords(common: boolean, after: string | undefined, until: number): { after: string | undefined; done: boolean; full: boolean } {
    let keys = 0;
    // A short range: it reads on past the end of the slice.
    for (const { key, value } of this.dfTable.getRange({ start: after, limit: WARM_RANGE })) {
      keys++;
      if (key === after) continue;
      after = key;
      // A df record starts with the word's document frequency (see `storedDf`).
      if ((readU32(value, 0) >= MERGED_CACHE_POSTINGS) !== common) continue;
      if (!this.warmMerged(key)) return { after, done: false, full: true };
      if (performance.now() >= until) return { after, done: false, full: false };
    }
    return { after, done: keys < WARM_RANGE, full: false };
  }

  /** Visits `term`'s postings in the blocks of segments `top` down to 0 (but `skip`), newest first, while `n` < `cap`. */
  private readBlocks(term: string, top: number, cap: number, n: number, maxSeq: number, skip: number | undefined, visit: PostingVisitor): number {
    const { kind, a, b } = termParts(term);
    const h = hashTerm(kind, a, b, TERM_HASH);
    const h1 = h[0]!;
    const h2 = h[1]!;
    const shape = h[2]!;
    // A word's df record says which segments hold a block of it: a rare word costs a lookup per segment it is in,
    // not one per segment of the store. (A copy: the lookups below reuse lmdb-js's read buffer.)
    const segments = isWordTerm(term) ? this.dfTable.getBinary(term) : undefined;
    if (isWordTerm(term) && segments === undefined) return n;
    for (let segment = top; segment >= 0 && n < cap; segment--) {
      if (segment === skip) continue;
      if (segments !== undefined && !hasSegment(segments, segment)) continue;
      writeBucketKey(this.bucketKey, 0, segment, bucketOf(h1));
      const bucket = this.blocks.getBinaryFast(this.bucketKey);
      if (bucket === undefined) continue;
      const hit = findInBucket(bucket, h1, h2, shape, this.hit);
      if (hit.entry < 0) continue;
      if (hit.start !== LARGE) {
        n = visitNewest(bucket, hit.start, hit.end, cap, n, maxSeq, visit);
        continue;
      }
      writeLargeKey(this.largeKey, 0, segment, h1, h2, shape);
      const block = this.blocks.getBinaryFast(this.largeKey);
      if (block !== undefined) n = visitNewest(block, 0, block.length, cap, n, maxSeq, visit);
    }
    return n;
  }

  /**
   * Documents containing a word term (merged counter + open segment + the merging segment's unwritten blocks), as
   * of a reader's snapshot: its applied position (`maxSeq`) and stored `mergedTerms` — while a merging batch commits,
   * the merge has got further in memory than in the snapshot, whose stored counters lack the blocks written since.
   */
  df(term: string, maxSeq: number, snapshotMerged: number, current = false): number {
    return this.storedDf(term, current) + this.open.count(term, maxSeq) + this.unwrittenCount(term, maxSeq, snapshotMerged);
  }

  private unwrittenCount(term: string, maxSeq: number, snapshotMerged: number): number {
    const sealed = this.sealed;
    if (sealed === undefined) return 0;
    // How many puts the snapshot holds: none if it predates the seal, all if its merge is over.
    const written = maxSeq < (sealed.postings.segment + 1) * SEGMENT_SEQS ? 0 : snapshotMerged === NO_MERGE ? sealed.blocks.count : snapshotMerged;
    if (written === sealed.blocks.count) return 0;
    const r = sealed.postings.blockIndexOf(term);
    if (r < 0 || sealed.blocks.putOf(r) < written) return 0;
    const block = sealed.blocks.block(r);
    return visitNewest(block, 0, block.length, Number.MAX_SAFE_INTEGER, 0, maxSeq, NO_VISIT);
  }

  /** A word's df record: its document frequency (u32 BE), then a bitmap of the segments holding a block of it. */
  private storedDf(term: string, current: boolean): number {
    // A reader whose snapshot is the write path's own state (`current`: no batch in flight) takes the record the
    // write path last wrote when it has it (in memory; at 1M facts the df table's pages are cold).
    const bytes = (current ? this.dfWritten.get(term) : undefined) ?? this.dfTable.getBinaryFast(term);
    return bytes === undefined ? 0 : readU32(bytes, 0);
  }

  /**
   * Adds `delta` to a word's document frequency and, for a merge, marks `segment` as holding a block of it. `h1`,
   * `h2`, `shape`: the word's identity (`hashTerm`).
   */
  private addDf(term: string, delta: number, segment: number | undefined, h1: number, h2: number, shape: number): void {
    const found = this.dfByIdentity.get(h1, h2, shape);
    let entry = found !== undefined && found.word === term ? found : undefined;
    const held = entry !== undefined ? entry.record : this.dfWritten.get(term);
    if (held !== undefined && held !== NO_DF) {
      const count = readU32(held, 0) + delta;
      const at = segment === undefined ? 0 : 4 + (segment >> 3);
      if (count > 0 && at < held.length) {
        // The same bytes, changed in place: the held record is the write path's own (LMDB copied it when it was
        // put), so a merge allocates nothing and sets no map entry for the ~20k words it updates.
        writeU32(held, 0, count);
        if (segment !== undefined) held[at] = held[at]! | (1 << (segment & 7));
        this.dfTable.putSync(term, held);
        return;
      }
    }
    const current = held ?? this.dfTable.getBinary(term) ?? NO_DF;
    // allocUnsafe: small buffers come from Node's pool (an ArrayBuffer each was ~1 µs and GC pressure per update).
    const next = Buffer.allocUnsafe(segment === undefined ? current.length : Math.max(current.length, 4 + (segment >> 3) + 1));
    // A few bytes: a loop costs less than Buffer's copy and fill calls (a merge updates ~20k words).
    for (let i = 0; i < current.length; i++) next[i] = current[i]!;
    for (let i = current.length; i < next.length; i++) next[i] = 0;
    const count = readU32(current, 0) + delta;
    writeU32(next, 0, Math.max(0, count));
    if (segment !== undefined) next[4 + (segment >> 3)] = next[4 + (segment >> 3)]! | (1 << (segment & 7));
    if (this.dfWritten.size >= DF_CACHE_WORDS) {
      this.dfWritten.clear();
      this.dfByIdentity.clear();
      entry = undefined;
    }
    const record = count <= 0 ? NO_DF : next;
    this.dfWritten.set(term, record);
    if (entry !== undefined) entry.record = record;
    else this.dfByIdentity.set(h1, h2, shape, { word: term, record });
    if (count <= 0) this.dfTable.removeSync(term);
    else this.dfTable.putSync(term, record);
  }
}

/** A word's df record as the write path last wrote it (`PostingIndex.dfByIdentity`). */
interface HeldDf {
  readonly word: string;
  record: Buffer;
}

/** `run` without the postings of `seqs` (both ascending). */
function withoutSeqs(run: PostingRun, seqs: readonly number[]): PostingRun {
  const kept: number[] = [];
  let k = 0;
  for (let i = 0; i < run.length; i += 3) {
    const seq = run[i]!;
    while (k < seqs.length && seqs[k]! < seq) k++;
    if (k < seqs.length && seqs[k] === seq) continue;
    kept.push(seq, run[i + 1]!, run[i + 2]!);
  }
  return kept;
}

/** Where the posting of `seq` is in bytes [start, end) of `bucket`, or -1. */
function findSeq(bucket: Uint8Array, start: number, end: number, seq: number): number {
  for (let at = start; at < end; at += POSTING_BYTES) if (seqAt(bucket, at) === seq) return at;
  return -1;
}

const NO_VISIT: PostingVisitor = () => undefined;
const DF_CACHE_WORDS = 1 << 18;
/** The df record of a word with none. */
const NO_DF = Buffer.alloc(4);

function hasSegment(record: Uint8Array, segment: number): boolean {
  const at = 4 + (segment >> 3);
  return at < record.length && (record[at]! & (1 << (segment & 7))) !== 0;
}

/** The sequence of the posting at `at` (6 bytes, big-endian; see `codec.ts`). */
function seqAt(block: Uint8Array, at: number): number {
  return ((block[at]! << 8) | block[at + 1]!) * 0x100000000 + ((block[at + 2]! << 24) >>> 0) + ((block[at + 3]! << 16) | (block[at + 4]! << 8) | block[at + 5]!);
}

/** Visits the postings in bytes [start, end) of `block` newest first while `n` < `cap`; returns the new `n`. */
function visitNewest(block: Uint8Array, start: number, end: number, cap: number, n: number, maxSeq: number, visit: PostingVisitor): number {
  for (let at = end - POSTING_BYTES; at >= start && n < cap; at -= POSTING_BYTES) {
    const seq = seqAt(block, at);
    if (seq > maxSeq) continue;
    visit(seq, block[at + 6]!, block[at + 7]!);
    n++;
  }
  return n;
}
