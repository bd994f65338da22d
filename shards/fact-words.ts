/**
 * Per fact, its words as short hashes with their frequencies, and its length in words: enough for a subject-filtered
 * recall to bound each candidate's text relevance without reading the candidate.
 *
 * Why: a subject filter takes the subject's newest facts, up to max(40, 4 × limit) of them, and their text relevance
 * (BM25 over the query words) came from reading, decoding and tokenizing each. At 10k facts a subject has a handful;
 * at 1M most have 40, each a random read of a large file: ~230 µs a query against ~35 at 10k, and as a fifth of the
 * bench's queries they set where the median falls. With these, a candidate whose words hold none of the query's has
 * relevance SUBJECT_MATCH_RELEVANCE exactly (a word's hash is always the same, so "absent" is certain), and one that
 * may hold some has a bound that is its relevance unless two words' 16-bit hashes collide; only candidates whose
 * bound can still reach the top k are read, scored from their record as before. The answers do not change.
 *
 * Layout: pages of PAGE sequences, each a fixed slot of SLOT bytes per sequence: a tag (none, inline, elsewhere),
 * then the entry — the length in words (saturating at 255), the number of distinct words n (at most MAX_WORDS kept:
 * a fact with more is marked and always read), then n × (hash: u16, tf: u8 saturating at 255). An entry of up to
 * INLINE words sits in its slot; a longer one in the page's pool, its offset in the slot. ~48 bytes a fact.
 * Why fixed slots: at 1M facts a subject filter's 40 candidates are scattered over the store, and each was a cache
 * (and TLB) miss for its offset and another for its entry; one slot is one miss.
 *
 * Filled as facts are indexed (`PostingIndex.addFact`: the load path, the open segment at open); facts indexed before
 * this process opened the store are filled a page at a time from their records on first use (`fillPage`), or ahead
 * of use, 512 facts a step, by a reopened store's warming (`fillNext`, `warm-up.ts`). Derived
 * data: never stored, dropped whenever the open segment is rebuilt (at open, after a failed batch).
 */
import { FactTerms } from './fact-terms.ts';
import { WORD } from './records.ts';

const PAGE = 4096;
const MAX_WORDS = 64;
const SATURATED = 255;
/** Facts `fillNext` fills per call (an eighth of a page: ~1.5 ms at 1M facts on these machines). */
const FILL_STEP = 512;
/** An entry's n when the fact had more than MAX_WORDS distinct words: nothing is known, the record is read. */
export const TOO_MANY = 255;
/** Bytes per sequence: a tag, then an entry of up to INLINE words (or where it is). */
const SLOT = 48;
const INLINE = Math.floor((SLOT - 3) / 3);
/** A slot's tag. */
const NONE = 0;
const HERE = 1;
const ELSEWHERE = 2;

export const wordHash = (h1: number): number => (h1 >>> 16) & 0xffff;

/** `FactWords.wordsOfHash`: no word filed has the hash, exactly one has (`FactWords.isTheWord` says which), or more. */
export const NO_WORD = 0;
export const ONE_WORD = 1;
export const MANY_WORDS = 2;

interface Page {
  /** SLOT bytes per sequence of the page: tag, then the entry (HERE) or its u32 offset in `pool` (ELSEWHERE). */
  readonly slots: Uint8Array;
  /** Entries of more than INLINE words. */
  pool: Uint8Array;
  used: number;
  /** The facts of the page below this position (and indexed before `completeFrom`) have been filled from their records. */
  filledTo: number;
}

/** Reads the records of facts [from, to) and calls `add` with each one's sequence and text. */
export type PageReader = (from: number, to: number, add: (seq: number, text: string) => void) => void;

const scanned = new FactTerms();

export class FactWords {
  private pages: (Page | undefined)[] = [];
  /**
   * Per 16-bit word hash, how many distinct words (by identity) any entry ever filed here had with that hash,
   * saturating at MANY_WORDS, and the identity (h1, h2, shape) of the first. Every entry's words are filed here
   * (`fileWords`), so when one word only has a hash, an entry word with that hash is that word: a subject-filtered recall then knows a
   * candidate's relevance from its entry without reading its text (`recall.ts`). Never cleared, not even when the
   * pages are dropped: a word left from a failed batch only makes a hash look shared, which costs a read.
   */
  private readonly hashWords = new Uint8Array(65536);
  private readonly hashIdentity = new Int32Array(65536 * 3);
  /** Facts at or after this position were all indexed by this process (`add`); older ones come from their records. */
  private completeFrom = 0;
  /** The first page `fillNext` has not looked at. */
  private nextToFill = 0;

  /** Starts over: facts from `completeFrom` on will be added as they are indexed. */
  reset(completeFrom: number): void {
    this.pages = [];
    this.completeFrom = completeFrom;
    this.nextToFill = 0;
  }

  /**
   * Fills the next page of facts indexed before this process opened the store, as a recall's `find` would on first
   * use; false when no page is left to fill. A reopened store does this before queries ask (`ShardStore.warmUp`):
   * filling a page reads its 4096 records, milliseconds a subject-filtered recall would otherwise wait for.
   */
  fillNext(read: PageReader): boolean {
    const pages = Math.ceil(this.completeFrom / PAGE);
    while (this.nextToFill < pages) {
      const p = this.nextToFill;
      if (this.filled(p)) {
        this.nextToFill++;
        continue;
      }
      // Part of a page at a time: a whole one took ~11 ms at 1M facts, past a warming slice's few.
      this.fillPage(p, read, FILL_STEP);
      return true;
    }
    return false;
  }

  /** Files the words of the fact created at `seq` (its terms just scanned). */
  add(seq: number, terms: FactTerms): void {
    const page = this.pageFor(seq);
    let n = 0;
    for (let i = 0; i < terms.count; i++) if (terms.kind[i] === WORD) n++;
    const slot = (seq - Math.floor(seq / PAGE) * PAGE) * SLOT;
    let out = page.slots;
    let at = slot + 1;
    if (n > INLINE && n <= MAX_WORDS) {
      at = this.reserve(page, 2 + n * 3);
      out = page.pool;
      page.used = at + 2 + n * 3;
      const slots = page.slots;
      slots[slot] = ELSEWHERE;
      slots[slot + 1] = at >>> 24;
      slots[slot + 2] = (at >>> 16) & 0xff;
      slots[slot + 3] = (at >>> 8) & 0xff;
      slots[slot + 4] = at & 0xff;
    } else page.slots[slot] = HERE;
    out[at] = Math.min(SATURATED, terms.length);
    if (n > MAX_WORDS) {
      out[at + 1] = TOO_MANY;
      return;
    }
    out[at + 1] = n;
    let o = at + 2;
    for (let i = 0; i < terms.count; i++) {
      if (terms.kind[i] !== WORD) continue;
      const h = wordHash(terms.ident[i * 3]!);
      out[o] = h >>> 8;
      out[o + 1] = h & 0xff;
      out[o + 2] = Math.min(SATURATED, terms.tf[i]!);
      o += 3;
    }
  }

  /**
   * Where the entry of the fact created at `seq` is: `out.pool` and `out.at` (its length byte), or false when there
   * is none. `read` fills the page from its records first when facts before `completeFrom` may be missing.
   */
  find(seq: number, read: PageReader, out: { pool: Uint8Array; at: number }): boolean {
    const p = Math.floor(seq / PAGE);
    let page = this.pages[p];
    if (seq < this.completeFrom && !this.filled(p)) {
      page = this.fillPage(p, read, PAGE);
    }
    if (page === undefined) return false;
    const slots = page.slots;
    const slot = (seq - p * PAGE) * SLOT;
    const tag = slots[slot]!;
    if (tag === HERE) {
      out.pool = slots;
      out.at = slot + 1;
      return true;
    }
    if (tag === NONE) return false;
    out.pool = page.pool;
    out.at = ((slots[slot + 1]! << 24) >>> 0) + ((slots[slot + 2]! << 16) | (slots[slot + 3]! << 8) | slots[slot + 4]!);
    return true;
  }

  /**
   * Files the words `which[0..n)` of `terms` by hash (`wordsOfHash`). Every word of every entry must have been filed:
   * `PostingIndex.addFact` files those new to the open segment, `fillPage` every word of the facts it reads.
   */
  fileWords(terms: FactTerms, which: Int32Array, n: number): void {
    const ident = terms.ident;
    for (let j = 0; j < n; j++) {
      const i = which[j]!;
      this.fileWord(ident[i * 3]!, ident[i * 3 + 1]!, ident[i * 3 + 2]!);
    }
  }

  /** How many distinct words filed have the 16-bit hash `h`: NO_WORD, ONE_WORD or MANY_WORDS. */
  wordsOfHash(h: number): number {
    return this.hashWords[h]!;
  }

  /** Whether the one word filed with the hash `h` (ONE_WORD) is the word of identity (h1, h2, shape). */
  isTheWord(h: number, h1: number, h2: number, shape: number): boolean {
    const id = this.hashIdentity;
    return id[h * 3] === h1 && id[h * 3 + 1] === h2 && id[h * 3 + 2] === shape;
  }

  private fileWord(h1: number, h2: number, shape: number): void {
    const h = wordHash(h1);
    const count = this.hashWords[h]!;
    if (count === MANY_WORDS) return;
    const id = this.hashIdentity;
    if (count === NO_WORD) {
      id[h * 3] = h1;
      id[h * 3 + 1] = h2;
      id[h * 3 + 2] = shape;
      this.hashWords[h] = ONE_WORD;
    } else if (id[h * 3] !== h1 || id[h * 3 + 1] !== h2 || id[h * 3 + 2] !== shape) this.hashWords[h] = MANY_WORDS;
  }

  /**
   * Fills from their records the pages of the first `n` candidates that `find` would fill (facts older than this
   * process), so that their words are filed by hash before a recall reads `wordsOfHash`.
   */
  fillFor(candidates: readonly { readonly seq: number }[], n: number, read: PageReader): void {
    for (let i = 0; i < n; i++) {
      const seq = candidates[i]!.seq;
      const p = Math.floor(seq / PAGE);
      if (seq < this.completeFrom && !this.filled(p)) this.fillPage(p, read, PAGE);
    }
  }

  /** Reads the first bytes of each of the first `n` candidates' slots (see `ScoreNumbers.touch`); fills nothing. */
  touch(candidates: readonly { readonly seq: number }[], n: number): number {
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const seq = candidates[i]!.seq;
      const p = Math.floor(seq / PAGE);
      const page = this.pages[p];
      if (page === undefined) continue;
      const slot = (seq - p * PAGE) * SLOT;
      // Both ends: a slot straddles two cache lines more often than not.
      sum += page.slots[slot]! + page.slots[slot + SLOT - 1]!;
    }
    return sum;
  }

  /** Whether every fact of page `p` indexed before `completeFrom` has been filled from its record. */
  private filled(p: number): boolean {
    const page = this.pages[p];
    return page !== undefined && page.filledTo >= Math.min((p + 1) * PAGE, this.completeFrom);
  }

  /** Fills up to `count` more of page `p`'s facts indexed before `completeFrom` from their records. */
  private fillPage(p: number, read: PageReader, count: number): Page {
    const page = this.pageFor(p * PAGE);
    const from = Math.max(page.filledTo, p * PAGE);
    const to = Math.min((p + 1) * PAGE, this.completeFrom, from + count);
    read(from, to, (seq, text) => {
      if (page.slots[(seq - p * PAGE) * SLOT] !== NONE) return;
      scanned.scan({ text, subject: undefined, predicate: undefined, object: undefined });
      for (let i = 0; i < scanned.count; i++) this.fileWord(scanned.ident[i * 3]!, scanned.ident[i * 3 + 1]!, scanned.ident[i * 3 + 2]!);
      this.add(seq, scanned);
    });
    page.filledTo = to;
    return page;
  }

  private pageFor(seq: number): Page {
    const p = Math.floor(seq / PAGE);
    return (this.pages[p] ??= { slots: new Uint8Array(PAGE * SLOT), pool: new Uint8Array(0), used: 0, filledTo: 0 });
  }

  private reserve(page: Page, bytes: number): number {
    if (page.used + bytes > page.pool.length) {
      const grown = new Uint8Array(Math.max(page.pool.length * 2, page.used + bytes, 4096));
      grown.set(page.pool.subarray(0, page.used));
      page.pool = grown;
    }
    return page.used;
  }
}
