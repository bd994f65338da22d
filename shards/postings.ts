/**
 * Posting lists (term → the facts that mention it), kept so that loading is fast and a query's work does not grow
 * with the store.
 *
 * Why this shape: one LMDB put per (term, fact) costs ~1.5 µs of JS→native work and, at 1M facts, every put lands on
 * a different B-tree page, so each 1000-fact transaction copied ~10k pages; we measured ~30k facts/s that way. So
 * postings of the newest *segment* (SEGMENT_SEQS log sequences) live only in memory, and when the log crosses a
 * segment boundary the whole segment is merged into LMDB as one block per (term, segment), key
 * `term \x1f segment` — one put per distinct term instead of one per posting, sorted by term. The open segment is
 * derived data: at start-up it is rebuilt from the facts of that one segment (bounded, ≤ SEGMENT_SEQS facts), never
 * from the whole store. Segment boundaries depend only on sequence numbers, so the bytes do not depend on how the
 * log was cut into batches.
 *
 * Reads go newest first (open segment, then blocks by descending segment) and callers cap how many postings they
 * take per term: a query costs the same at 10k and 1M facts, at the price of seeing only a term's newest mentions.
 * Document frequencies are counters (`df` table) updated at merge and on forget, plus the open segment's counts.
 *
 * Reads racing a merge: until the merging batch commits, readers cannot see its blocks yet, so the merged segment
 * stays readable from memory (`sealed`) until the store calls `committed()`.
 */
import type { Database } from 'lmdb';
import { decodePostings, decodeValue, encodePostings, encodeValue, POSTING_BYTES, type PostingRun } from './codec.ts';
import { SegmentPostings, type Posting } from './segment.ts';

export type { Posting } from './segment.ts';

export const SEGMENT_SEQS = 32768;
const SEGMENT_WIDTH = 8;
export const TERM_SEPARATOR = '\x1f';

/** Word terms carry text statistics; structural terms (subject, edge, identity lists) do not count toward df. */
export function isWordTerm(term: string): boolean {
  return term.charCodeAt(0) === 119 /* w */ && term.charCodeAt(1) === 58 /* : */;
}

export function segmentOf(seq: number): number {
  return Math.floor(seq / SEGMENT_SEQS);
}

function blockKey(term: string, segment: number): string {
  return term + TERM_SEPARATOR + segment.toString(36).padStart(SEGMENT_WIDTH, '0');
}

const openSegmentFor = (segment: number): SegmentPostings => new SegmentPostings(segment, segment * SEGMENT_SEQS);

export class PostingIndex {
  private open = openSegmentFor(0);
  /** The last merged segment, kept readable from memory until its blocks are committed. */
  private sealed: SegmentPostings | undefined;

  constructor(
    private readonly blocks: Database<Buffer, string>,
    private readonly dfTable: Database<Buffer, string>,
  ) {}

  /** Starts (or restarts) with an empty open segment for `seq`'s segment; the caller re-adds its facts. */
  reset(seq: number): void {
    this.open = openSegmentFor(segmentOf(seq));
    this.sealed = undefined;
  }

  /** The transaction that merged a segment has committed: its blocks are readable now. */
  committed(): void {
    this.sealed = undefined;
  }

  /** Before applying `seq`: if it belongs to a later segment, the open one is merged into LMDB first. */
  rollTo(seq: number): void {
    const segment = segmentOf(seq);
    if (segment <= this.open.segment) return;
    this.merge();
    this.open = openSegmentFor(segment);
  }

  /** Adds a posting for a fact created at `seq` (ascending order within the open segment). */
  add(term: string, seq: number, tf: number, len: number): void {
    this.open.add(term, seq, tf, len);
  }

  /** Removes a fact's posting (forget): from memory if it is in the open segment, else rewrites its block. */
  remove(term: string, seq: number): void {
    const segment = segmentOf(seq);
    if (segment === this.open.segment) {
      this.open.remove(term, seq);
      return;
    }
    const key = blockKey(term, segment);
    const bytes = this.blocks.getBinary(key);
    if (bytes === undefined) return;
    const run = decodePostings(bytes);
    const kept = withoutSeq(run, seq);
    if (kept.length === run.length) return;
    if (kept.length === 0) this.blocks.removeSync(key);
    else this.blocks.putSync(key, encodePostings(kept));
    if (isWordTerm(term)) this.addDf(term, -1);
  }

  /** Postings of `term`, newest first, at most `cap`, with seq ≤ `maxSeq` when given. */
  newest(term: string, cap: number, maxSeq = Number.MAX_SAFE_INTEGER): Posting[] {
    const out: Posting[] = [];
    this.open.newest(term, cap, maxSeq, out);
    const sealed = this.sealed;
    if (sealed !== undefined) sealed.newest(term, cap, maxSeq, out);
    if (out.length >= cap) return out;
    const hi = maxSeq === Number.MAX_SAFE_INTEGER ? term + TERM_SEPARATOR + '\uffff' : blockKey(term, segmentOf(maxSeq)) + '\uffff';
    const skip = sealed === undefined ? undefined : blockKey(term, sealed.segment);
    for (const { key, value } of this.blocks.getRange({ start: hi, end: term + TERM_SEPARATOR, reverse: true })) {
      if (key === skip) continue; // already read from `sealed`
      takeNewest(decodePostings(value), cap, maxSeq, out);
      if (out.length >= cap) break;
    }
    return out;
  }

  /** Documents containing a word term (merged counter + open segment). */
  df(term: string): number {
    const bytes = this.dfTable.getBinary(term);
    const stored = bytes === undefined ? 0 : decodeValue<number>(bytes);
    return stored + this.open.count(term);
  }

  /** Writes the open segment as one block per term, in term order, and folds its counts into `df`. */
  private merge(): void {
    const open = this.open;
    for (const { term, block } of open.blocks()) {
      this.blocks.putSync(blockKey(term, open.segment), block);
      if (isWordTerm(term)) this.addDf(term, block.length / POSTING_BYTES);
    }
    this.sealed = open;
  }

  private addDf(term: string, delta: number): void {
    const bytes = this.dfTable.getBinary(term);
    const next = (bytes === undefined ? 0 : decodeValue<number>(bytes)) + delta;
    if (next <= 0) this.dfTable.removeSync(term);
    else this.dfTable.putSync(term, encodeValue(next));
  }
}

function withoutSeq(run: PostingRun, seq: number): PostingRun {
  const kept: number[] = [];
  for (let i = 0; i < run.length; i += 3) if (run[i] !== seq) kept.push(run[i]!, run[i + 1]!, run[i + 2]!);
  return kept;
}

function takeNewest(run: PostingRun, cap: number, maxSeq: number, out: Posting[]): void {
  for (let i = run.length - 3; i >= 0 && out.length < cap; i -= 3) {
    const seq = run[i]!;
    if (seq <= maxSeq) out.push({ seq, tf: run[i + 1]!, len: run[i + 2]! });
  }
}
