/**
 * A free-text recall's candidates: the BM25 sum per fact over the query words' postings, then the best few in order.
 *
 * Why not a `Map<seq, number>` and a sort of every candidate: at 1M facts each query word brings its full cap of
 * postings (up to 16 × 96), and the Map's get/set per posting plus sorting all of them to keep the first 40 were a
 * third of a query. Here the sums live in a small open-addressing table of typed arrays, reused by every query
 * (recall is synchronous), and the best `n` are kept by insertion into a sorted run of length `n`. The order is the
 * one the sort gave — relevance descending, then sequence descending — so results do not change.
 */

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

/** The `n` best candidates accumulated since the last reset: relevance descending, then sequence descending. */
export function bestCandidates(n: number): Candidate[] {
  const seqs: number[] = [];
  const rels: number[] = [];
  for (let u = 0; u < count; u++) {
    const slot = used[u]!;
    const seq = keys[slot]!;
    const rel = sums[slot]!;
    let i = seqs.length;
    if (i === n) {
      if (!before(rel, seq, rels[n - 1]!, seqs[n - 1]!)) continue;
      i = n - 1;
    }
    while (i > 0 && before(rel, seq, rels[i - 1]!, seqs[i - 1]!)) {
      rels[i] = rels[i - 1]!;
      seqs[i] = seqs[i - 1]!;
      i--;
    }
    rels[i] = rel;
    seqs[i] = seq;
  }
  const out: Candidate[] = new Array(seqs.length);
  for (let i = 0; i < seqs.length; i++) out[i] = { seq: seqs[i]!, relevance: rels[i]! };
  return out;
}

function before(relA: number, seqA: number, relB: number, seqB: number): boolean {
  return relA > relB || (relA === relB && seqA > seqB);
}
