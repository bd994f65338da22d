/**
 * The numbers recall scores a fact by — status, confidence, half-life, when it was last reinforced and when it was
 * recorded, and when it is true in the world for a plain recall (`world-time.ts`) — for every fact, in memory, by
 * creating sequence.
 *
 * Why: a free-text recall ranks its candidates by relevance and reads each one's record until no later candidate
 * can reach the top k; with scores close together that is most of its 40 candidates, and at 1M facts each read is a
 * random page of a large file (~1.4 µs, ~60 µs a query: most of what a recall at 1M cost beyond one at 10k). Here
 * the scoring is array reads; records are read only for the facts returned. The numbers are derived data, filled
 * from the fact records at open (the same pass as the write indexes) and set by the applier whenever it writes a
 * fact, so they never change the bytes on disk. 56 bytes per sequence (pages of 4096 sequences, allocated as facts
 * arrive: a log that jumps far ahead pays at most a page per fact). The world interval is kept as the two bounds a
 * plain recall compares with now (`currentSince`, `currentUntil`), not the four times they come from: a value
 * superseded by one valid later in world time is still the true one until then, so status alone cannot say.
 *
 * Snapshot-bound reads: the numbers are the applier's, which run ahead of what readers see while a batch commits.
 * Recall uses them only when its LMDB snapshot's `appliedSeq` is the applier's own (no batch in flight); otherwise
 * it reads the records as before.
 */
import { peekFact, type FactNumbers } from './fact-codec.ts';
import type { FactStatus } from './types.ts';
import { currentSince, currentUntil, type WorldTimes } from './world-time.ts';

/** The numbers `read` gives: a fact's scoring numbers and the bounds of when a plain recall counts it true. */
export interface ScoredNumbers extends FactNumbers {
  /** `currentSince` of the fact: −Infinity when true from when it was recorded. */
  since: number;
  /** `currentUntil` of the fact: Infinity while open, −Infinity once ended. */
  until: number;
}

const STATUSES: readonly FactStatus[] = ['active', 'superseded', 'retracted', 'forgotten'];
const STATUS_CODE: Readonly<Record<FactStatus, number>> = { active: 0, superseded: 1, retracted: 2, forgotten: 3 };
const SCRATCH: FactNumbers = { status: 'active', confidence: 0, halfLifeDays: 0, validFrom: 0, validTo: undefined, recordedAt: 0, invalidatedAt: undefined, reinforcedAt: 0 };

/** Sequences per page: a page is allocated when its first fact is written. */
const PAGE = 4096;
/** Per sequence: status + 1 (0: no fact created there), confidence, half-life, reinforcedAt, recordedAt, since, until. */
const STRIDE = 7;

export class ScoreNumbers {
  /**
   * Pages by sequence / PAGE, each a Float64Array of PAGE slots: a lookup is a direct index, one or two cache lines
   * (a binary search over a million sequences was ~20 cache misses per candidate).
   */
  private pages: (Float64Array | undefined)[] = [];

  clear(): void {
    this.pages = [];
  }

  /** Files the numbers in a fact record just written at `seq` (its creating sequence). */
  set(seq: number, bytes: Buffer): void {
    this.setNumbers(seq, peekFact(bytes, SCRATCH));
  }

  /** `set` from the fact (or its peeked numbers) itself: a new fact's, without reading back its bytes. */
  setNumbers(seq: number, n: Pick<FactNumbers, 'status' | 'confidence' | 'halfLifeDays' | 'reinforcedAt' | 'recordedAt'> & WorldTimes): void {
    const p = Math.floor(seq / PAGE);
    const page = (this.pages[p] ??= new Float64Array(PAGE * STRIDE));
    const at = (seq - p * PAGE) * STRIDE;
    page[at] = STATUS_CODE[n.status] + 1;
    page[at + 1] = n.confidence;
    page[at + 2] = n.halfLifeDays;
    page[at + 3] = n.reinforcedAt;
    page[at + 4] = n.recordedAt;
    page[at + 5] = currentSince(n);
    page[at + 6] = currentUntil(n);
  }

  /**
   * Reads each of the first `n` candidates' entries, in a loop that does nothing else: at 1M facts each is a cache
   * miss, and independent loads in a short loop are waited for together instead of one by one.
   */
  touch(candidates: readonly { readonly seq: number }[], n: number): number {
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const seq = candidates[i]!.seq;
      const p = Math.floor(seq / PAGE);
      const page = this.pages[p];
      // Both ends of the entry: 56 bytes straddle two cache lines more often than not.
      const at = (seq - p * PAGE) * STRIDE;
      if (page !== undefined) sum += page[at]! + page[at + STRIDE - 1]!;
    }
    return sum;
  }

  /** `touch` of the first `n` sequences of `seqs` (recall's walk past dead facts). */
  touchSeqs(seqs: Float64Array, n: number): number {
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const seq = seqs[i]!;
      const p = Math.floor(seq / PAGE);
      const page = this.pages[p];
      const at = (seq - p * PAGE) * STRIDE;
      if (page !== undefined) sum += page[at]! + page[at + STRIDE - 1]!;
    }
    return sum;
  }

  /**
   * Fills `out`'s status, confidence, halfLifeDays, reinforcedAt, recordedAt, since and until for the fact created at
   * `seq`; false when there is none. (The other fields are left as they are: recall reads them only for `asOf`,
   * which reads records.)
   */
  read(seq: number, out: ScoredNumbers): boolean {
    const p = Math.floor(seq / PAGE);
    const page = this.pages[p];
    if (page === undefined) return false;
    const at = (seq - p * PAGE) * STRIDE;
    const status = page[at]!;
    if (status === 0) return false;
    out.status = STATUSES[status - 1]!;
    out.confidence = page[at + 1]!;
    out.halfLifeDays = page[at + 2]!;
    out.reinforcedAt = page[at + 3]!;
    out.recordedAt = page[at + 4]!;
    out.since = page[at + 5]!;
    out.until = page[at + 6]!;
    return true;
  }
}
