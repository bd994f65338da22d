/**
 * A free-text recall's candidates: the BM25 sum per fact over the query words' postings, then the best few in order.
 *
 * Why not a `Map<seq, number>` and a sort of every candidate: at 1M facts each query word brings its full cap of
 * postings (up to 16 × 96), and the Map's get/set per posting plus sorting all of them to keep the first 40 were a
 * third of a query. Here the sums live in a small open-addressing table of typed arrays, reused by every query
 * (recall is synchronous), and the best `n` are selected, then sorted. The order is the one the sort gave —
 * relevance descending, then sequence descending — so results do not change.
 */

import type { MergedVisitor } from './merged-postings.ts';

const CAPACITY = 4096; // > 2 × the most candidates a query can have (16 words × 96 postings)
const MASK = CAPACITY - 1;

const keys = new Float64Array(CAPACITY); // 0 = empty (log sequences start at 1)
const sums = new Float64Array(CAPACITY);
const used = new Int32Array(CAPACITY);
let count = 0;

export interface Candidate {
  readonly seq: number;
  readonly relevance: number;
}

/** Starts a query's accumulation. */
export function resetRelevance(): void {
  for (let i = 0; i < count; i++) keys[used[i]!] = 0;
  count = 0;
}

/** Adds `relevance` to `seq`'s sum (the first addition starts from 0, as `(map.get(seq) ?? 0) + x` did). */
export function addRelevance(seq: number, relevance: number): void {
  let i = Math.imul((seq | 0) ^ ((seq / 4294967296) | 0), 0x9e3779b1) & MASK;
  for (;;) {
    const k = keys[i]!;
    if (k === seq) {
      sums[i] = sums[i]! + relevance;
      return;
    }
    if (k === 0) break;
    i = (i + 1) & MASK;
  }
  if (count * 2 >= CAPACITY) throw new RangeError('too many recall candidates');
  keys[i] = seq;
  sums[i] = 0 + relevance;
  used[count++] = i;
}

/** BM25's term-frequency saturation; a word's term never exceeds `weight × (K1 + 1)`, recall's upper bounds use that. */
export const K1 = 1.2;
const B = 0.75;

/** A word's BM25 term for a fact with `tf` occurrences in `len` words (recall's; one function, so the same bits). */
export function bm25(weight: number, tf: number, len: number, avgLength: number): number {
  return weight * ((tf * (K1 + 1)) / (tf + K1 * (1 - B + (B * len) / avgLength)));
}

/** The word `addMergedRun` sums for: its weight and the corpus's average length. */
let runWeight = 0;
let runAvgLength = 1;

/** Starts a query word whose decoded merged postings `addMergedRun` will receive. */
export function startRun(weight: number, avgLength: number): void {
  runWeight = weight;
  runAvgLength = avgLength;
}

/**
 * `addRelevance` of each of a decoded merged entry's `take` newest postings (`MergedVisitor`, `merged-postings.ts`),
 * newest first, with its BM25 term: at 1M facts ~100 of a query's ~275 postings come from there (none at 10k), and
 * summing them in this loop costs less than a call per posting through the caller's closures. The same terms, added
 * in the same order, as the per-posting visitor: the same sums.
 */
export const addMergedRun: MergedVisitor = (postings, start, count, take) => {
  const weight = runWeight;
  const avgLength = runAvgLength;
  for (let i = 0, at = start; i < take; i++) {
    const x = postings[at * 2 + 1]!;
    addRelevance(postings[at * 2]!, bm25(weight, x >>> 8, x & 255, avgLength));
    if (++at === count) at = 0;
  }
};

/** How many candidates were accumulated since the last reset. */
export function candidateCount(): number {
  return count;
}

/** Candidates' relevance and sequence while selecting (reused). */
const selRel = new Float64Array(CAPACITY);
const selSeq = new Float64Array(CAPACITY);

/**
 * The `n` best candidates accumulated since the last reset: relevance descending, then sequence descending. The
 * `n`-th is found by quickselect and only the `n` best are sorted: at 1M facts a query has ~270 candidates, and
 * inserting each into a sorted run of 40 cost ~50 ns a candidate.
 */
export function bestCandidates(n: number): Candidate[] {
  const m = count;
  for (let u = 0; u < m; u++) {
    const slot = used[u]!;
    selRel[u] = sums[slot]!;
    selSeq[u] = keys[slot]!;
  }
  const k = Math.min(n, m);
  if (k < m) select(m, k - 1);
  // The first k are now the best k, in no order: sort them (insertion: k is small).
  for (let i = 1; i < k; i++) {
    const rel = selRel[i]!;
    const seq = selSeq[i]!;
    let j = i;
    while (j > 0 && before(rel, seq, selRel[j - 1]!, selSeq[j - 1]!)) {
      selRel[j] = selRel[j - 1]!;
      selSeq[j] = selSeq[j - 1]!;
      j--;
    }
    selRel[j] = rel;
    selSeq[j] = seq;
  }
  const out: Candidate[] = new Array(k);
  for (let i = 0; i < k; i++) out[i] = { seq: selSeq[i]!, relevance: selRel[i]! };
  return out;
}

/** Puts the candidate of rank `target` (0-based, `before` order) at `target`, better ones before it (Hoare). */
function select(m: number, target: number): void {
  let lo = 0;
  let hi = m - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const pRel = selRel[mid]!;
    const pSeq = selSeq[mid]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (before(selRel[i]!, selSeq[i]!, pRel, pSeq)) i++;
      while (before(pRel, pSeq, selRel[j]!, selSeq[j]!)) j--;
      if (i <= j) {
        const r = selRel[i]!;
        const q = selSeq[i]!;
        selRel[i] = selRel[j]!;
        selSeq[i] = selSeq[j]!;
        selRel[j] = r;
        selSeq[j] = q;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return;
  }
}

function before(relA: number, seqA: number, relB: number, seqB: number): boolean {
  return relA > relB || (relA === relB && seqA > seqB);
}
