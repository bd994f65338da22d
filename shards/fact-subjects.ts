/**
 * Every fact's subject as the index names it, in memory, by creating sequence: the identity (`hashTerm`) of its
 * subject term and the first hash of its (subject, predicate) term.
 *
 * Why: a subject-filtered recall takes its subject's newest live facts as candidates (`recall.ts`), so a subject
 * with more than 64 newer live facts (the user of a personal assistant holds hundreds) hid an older fact from a
 * query that names it — "The user never takes meetings before 10" from `{subject: "user", query: "meetings before
 * 10"}`. The query's words' postings hold that fact, but a posting does not say its fact's subject, and reading each
 * record to learn it (~275 postings a query at 1M facts, each a random page) would cost more than the whole query.
 * Here it is an array read per posting: a byte a sequence, a tag of its subject, in arrays small enough to stay in
 * the processor's caches (1 MB at 1M facts), then for the one in ~256 whose tag matches, its entry of 12 bytes
 * (pages of 4096 sequences, allocated as facts arrive). Reading the 12-byte entries of every posting instead, each
 * a cache miss at 1M facts, cost a subject-filtered query ~25 µs there (§76).
 *
 * A fact's subject and predicate never change after it is created (forget keeps them in the tombstone), so an entry
 * is set once, when the fact is created (`apply.ts`, from the terms it is indexed by) or at open (from the records),
 * and holds for every snapshot that holds the fact: unlike the score numbers, a reader need not be the applier's.
 * Derived data only: nothing written changes. Two subjects whose 64 hash bits both collide are one subject here, as
 * they are one posting list in the index (`term-table.ts`): the same on every replica.
 */
import { SUBJECT, SUBJECT_PREDICATE } from './records.ts';
import { hashTerm, TERM_HASH } from './term-table.ts';
import type { FactTerms } from './fact-terms.ts';

/** Sequences per page of entries: a page is allocated when its first fact is filed. */
const PAGE = 4096;
/**
 * Sequences per page of tags (64 KB): few pages, so the page objects a lookup goes through stay cached and a tag costs
 * one load from memory, not three (with 4096-sequence pages, 244 page objects at 1M facts were misses of their own).
 */
const TAG_PAGE = 65536;
/** Per sequence: the subject term's h1 and h2, the (subject, predicate) term's h1; all 0 for a fact with no subject. */
const STRIDE = 3;

/** What a recall asks `FactSubjects.is` about: a subject, and a predicate or none (`subjectKey`). */
export interface SubjectKey {
  /** `tagOf(h1, h2)`. */
  readonly tag: number;
  readonly h1: number;
  readonly h2: number;
  /** The (subject, predicate) term's h1, when the recall filters by predicate too. */
  readonly predicateH1: number | undefined;
}

/** The key `FactSubjects.is` compares a fact's entry with. */
export function subjectKey(subject: string, predicate: string | undefined): SubjectKey {
  const h = hashTerm(SUBJECT, subject, '', TERM_HASH);
  const h1 = h[0]!;
  const h2 = h[1]!;
  return { tag: tagOf(h1, h2), h1, h2, predicateH1: predicate === undefined ? undefined : hashTerm(SUBJECT_PREDICATE, subject, predicate, TERM_HASH)[0]! };
}

/** A subject's byte: 8 bits of its identity (h1's top bits: its low ones pick hash-table slots elsewhere). */
const tagOf = (h1: number, h2: number): number => ((h1 >>> 24) ^ h2) & 0xff;

export class FactSubjects {
  private pages: (Int32Array | undefined)[] = [];
  /** Per TAG_PAGE sequences, each one's `tagOf` its subject (0 also for no fact or no subject: the entry decides). */
  private tags: (Uint8Array | undefined)[] = [];

  clear(): void {
    this.pages = [];
    this.tags = [];
  }

  /** Files the fact created at `seq` from the terms it was just indexed by (`FactTerms.scan` of it). */
  fileTerms(seq: number, terms: FactTerms): void {
    // The structural terms come after the words, subject first, then (subject, predicate): look from the end.
    let h1 = 0;
    let h2 = 0;
    let predicateH1 = 0;
    for (let i = terms.count - 1; i >= 0 && i >= terms.count - 3; i--) {
      const kind = terms.kind[i];
      if (kind === SUBJECT) {
        h1 = terms.ident[i * 3]!;
        h2 = terms.ident[i * 3 + 1]!;
      } else if (kind === SUBJECT_PREDICATE) predicateH1 = terms.ident[i * 3]!;
    }
    this.put(seq, h1, h2, predicateH1);
  }

  /** Files the fact created at `seq` from its subject and predicate (a record read at open). */
  file(seq: number, subject: string | undefined, predicate: string | undefined): void {
    if (subject === undefined) return this.put(seq, 0, 0, 0);
    const h = hashTerm(SUBJECT, subject, '', TERM_HASH);
    const h1 = h[0]!;
    const h2 = h[1]!;
    this.put(seq, h1, h2, predicate === undefined ? 0 : hashTerm(SUBJECT_PREDICATE, subject, predicate, TERM_HASH)[0]!);
  }

  /** Whether the fact created at `seq` has `key`'s subject (and predicate, when it names one). */
  is(seq: number, key: SubjectKey): boolean {
    const t = Math.floor(seq / TAG_PAGE);
    const tags = this.tags[t];
    if (tags === undefined || tags[seq - t * TAG_PAGE] !== key.tag) return false;
    const p = Math.floor(seq / PAGE);
    const page = this.pages[p];
    if (page === undefined) return false;
    const at = (seq - p * PAGE) * STRIDE;
    return page[at] === key.h1 && page[at + 1] === key.h2 && (key.predicateH1 === undefined || page[at + 2] === key.predicateH1);
  }

  /**
   * Loads the tags of a merged run's postings from its `from`-th newest to its `take`-th (`MergedVisitor`'s layout)
   * ahead of `is`, in a loop that does nothing else: at 1M facts each is a cache miss, and independent loads in a
   * short loop are waited for together (as `ScoreNumbers.touch`). ~1 µs of the ~3.5 a subject-filtered query at 1M
   * spends on its words' older postings.
   */
  touchRun(postings: Float64Array, start: number, count: number, from: number, take: number): number {
    let sum = 0;
    let at = start + from;
    if (at >= count) at -= count;
    for (let k = from; k < take; k++) {
      const seq = postings[at * 2]!;
      const t = Math.floor(seq / TAG_PAGE);
      const tags = this.tags[t];
      if (tags !== undefined) sum += tags[seq - t * TAG_PAGE]!;
      if (++at === count) at = 0;
    }
    return sum;
  }

  private put(seq: number, h1: number, h2: number, predicateH1: number): void {
    const p = Math.floor(seq / PAGE);
    const page = (this.pages[p] ??= new Int32Array(PAGE * STRIDE));
    const t = Math.floor(seq / TAG_PAGE);
    (this.tags[t] ??= new Uint8Array(TAG_PAGE))[seq - t * TAG_PAGE] = tagOf(h1, h2);
    const at = (seq - p * PAGE) * STRIDE;
    page[at] = h1;
    page[at + 1] = h2;
    page[at + 2] = predicateH1;
  }
}
