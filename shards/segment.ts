/**
 * One index segment's postings in memory (the open segment, and the last merged one until its blocks commit).
 *
 * Why this shape: a `Map<term, number[]>` of growing arrays cost ~0.5 µs per posting (array growth, one array per
 * term, and the garbage of both) — a fifth of the load time. Here a term is interned once per segment to a small
 * integer (`term-table.ts`), and every posting is 5 int32s appended to one flat array: the previous posting of the same term, the
 * term, the sequence relative to the segment's first, term frequency and document length. Each term's postings are
 * a chain from its newest, which is the order reads want. The merge does not walk the chains (a cache miss per
 * posting): one forward pass over the array, a counting sort by term id, writes every block into one buffer.
 */
import { POSTING_BYTES } from './codec.ts';
import { termName, termParts, type TermKind } from './records.ts';
import { TermTable } from './term-table.ts';

const STRIDE = 5;
const NONE = -1;
/** A removed (forgotten) posting keeps its slot in the chain with this relative sequence. */
const REMOVED = -1;

export interface Posting {
  readonly seq: number;
  readonly tf: number;
  readonly len: number;
}

export type PostingVisitor = (seq: number, tf: number, len: number) => void;

export class SegmentPostings {
  private readonly terms = new TermTable();
  private readonly names: string[] = [];
  private head: Int32Array = new Int32Array(1024);
  private live: Int32Array = new Int32Array(1024);
  private entries: Int32Array = new Int32Array(1024 * STRIDE);
  private used = 0;
  /** Per term id, its block's index in the last `blocks()` answer (-1: none). */
  private rank: Int32Array | undefined;

  constructor(
    readonly segment: number,
    /** The segment's first sequence: postings store their sequence relative to it, so it fits an int32. */
    private readonly base: number,
  ) {}

  /** Adds a posting for a fact created at `seq` (ascending order within the segment). */
  add(term: string, seq: number, tf: number, len: number): void {
    const { kind, a, b } = termParts(term);
    this.addPart(kind, a, b, seq, tf, len);
  }

  /** `add` by the term's kind and parts (see `records.ts`): the load path, no term string built per posting. */
  addPart(kind: TermKind, a: string, b: string, seq: number, tf: number, len: number): void {
    let id = this.terms.get(kind, a, b);
    if (id === -1) {
      id = this.newTerm(kind, a, b);
      this.terms.setLast(id);
    }
    let at = this.used * STRIDE;
    if (at === this.entries.length) this.entries = grow(this.entries);
    const e = this.entries;
    e[at++] = this.head[id]!;
    e[at++] = id;
    e[at++] = seq - this.base;
    e[at++] = tf;
    e[at] = len;
    this.head[id] = this.used++;
    this.live[id]!++;
  }

  private newTerm(kind: TermKind, a: string, b: string): number {
    const id = this.names.length;
    this.names.push(termName(kind, a, b));
    if (id === this.head.length) {
      this.head = grow(this.head);
      this.live = grow(this.live);
    }
    this.head[id] = NONE;
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
    for (let i = this.head[id]!; i !== NONE; i = this.entries[i * STRIDE]!) {
      if (this.entries[i * STRIDE + 2] === rel) {
        this.entries[i * STRIDE + 2] = REMOVED;
        this.live[id]!--;
        return true;
      }
    }
    return false;
  }

  /** Live postings of `term` in this segment. */
  count(term: string, maxSeq = Number.MAX_SAFE_INTEGER): number {
    const id = this.idOf(term);
    if (id === undefined) return 0;
    // Postings above maxSeq are the newest, at the head of the chain: only those are walked.
    let above = 0;
    for (let i = this.head[id]!; i !== NONE; i = this.entries[i * STRIDE]!) {
      const rel = this.entries[i * STRIDE + 2]!;
      if (rel === REMOVED) continue;
      if (this.base + rel <= maxSeq) break;
      above++;
    }
    return this.live[id]! - above;
  }

  /**
   * Calls `visit` with `term`'s postings with seq ≤ `maxSeq`, newest first, at most `cap` of them; returns how many
   * it visited. Reads without building posting objects (recall's hot path).
   */
  forNewest(term: string, cap: number, maxSeq: number, visit: PostingVisitor): number {
    const id = this.idOf(term);
    if (id === undefined || cap <= 0) return 0;
    const e = this.entries;
    let n = 0;
    for (let i = this.head[id]!; i !== NONE; i = e[i * STRIDE]!) {
      const rel = e[i * STRIDE + 2]!;
      if (rel === REMOVED) continue;
      const seq = this.base + rel;
      if (seq > maxSeq) continue;
      visit(seq, e[i * STRIDE + 3]!, e[i * STRIDE + 4]!);
      if (++n === cap) break;
    }
    return n;
  }

  /**
   * Every term with live postings, each with its block (see `codec.ts`): 8 bytes per posting, ascending by seq —
   * seq (6 bytes, big-endian), term frequency and document length, both saturating at 255. The blocks are views of
   * one buffer. Terms come in the order of their oldest live posting: one pass over the postings instead of a sort
   * of every term (~3 µs per fact at the time), and the same order however the segment was built (a rebuilt
   * segment lacks only forgotten postings, which are removed here too), so a merge resumed after a restart writes
   * the same blocks at the same sequences.
   */
  blocks(): { term: string; block: Buffer }[] {
    const e = this.entries;
    const rank = new Int32Array(this.names.length).fill(-1);
    const order: number[] = [];
    for (let i = 0; i < this.used; i++) {
      if (e[i * STRIDE + 2] === REMOVED) continue;
      const id = e[i * STRIDE + 1]!;
      if (rank[id] === -1) rank[id] = order.push(id) - 1;
    }
    this.rank = rank;
    const cursor = new Float64Array(this.names.length);
    let total = 0;
    for (const id of order) {
      cursor[id] = total;
      total += this.live[id]! * POSTING_BYTES;
    }
    const out = Buffer.allocUnsafe(total);
    for (let i = 0; i < this.used; i++) {
      const rel = e[i * STRIDE + 2]!;
      if (rel === REMOVED) continue;
      const id = e[i * STRIDE + 1]!;
      const at = cursor[id]!;
      cursor[id] = at + POSTING_BYTES;
      const seq = this.base + rel;
      const high = Math.floor(seq / 0x100000000);
      out.writeUInt16BE(high, at);
      out.writeUInt32BE(seq - high * 0x100000000, at + 2);
      out[at + 6] = Math.min(255, e[i * STRIDE + 3]!);
      out[at + 7] = Math.min(255, e[i * STRIDE + 4]!);
    }
    const blocks: { term: string; block: Buffer }[] = [];
    let start = 0;
    for (const id of order) {
      const end = start + this.live[id]! * POSTING_BYTES;
      blocks.push({ term: this.names[id]!, block: out.subarray(start, end) });
      start = end;
    }
    return blocks;
  }

  /** The index of `term`'s block in the last `blocks()` answer, or -1. */
  blockIndexOf(term: string): number {
    const id = this.idOf(term);
    return id === undefined || this.rank === undefined ? -1 : this.rank[id] ?? -1;
  }
}

function grow(a: Int32Array): Int32Array {
  const b = new Int32Array(a.length * 2);
  b.set(a);
  return b;
}
