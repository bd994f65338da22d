/**
 * The index terms of one fact, hashed: what every assert files postings under, computed without building a string
 * per token.
 *
 * Why: tokenizing into strings (a lower-cased copy of the text, a slice per token, a stemmed slice, a stopword set
 * lookup that hashes the slice again) and then hashing each string for the segment's term table was a fifth of the
 * load's CPU, and most of its garbage. Here one pass over the text's characters finds the tokens, lower-cases,
 * drops stopwords, stems and hashes them in place (`hashTerm`'s function, so a term's identity is the same as
 * hashing its string: readers hash query words with `hashTerm`). A term's string is built only when asked for —
 * for a word new to a segment (its document-frequency key) or when forgetting. Text with any non-ASCII character
 * takes `tokenize` (the Unicode regex defines the tokens) and hashes its strings; both give the same terms
 * (test/shards/fact-terms.test.ts).
 *
 * Terms come in the order `records.ts` has always filed them: words in first-occurrence order with their
 * frequency, then subject, subject+predicate, object entity. One instance is reused for every fact (a scan
 * overwrites the last).
 */
import { OBJECT_ENTITY, SUBJECT, SUBJECT_PREDICATE, termName, WORD, type TermKind } from './records.ts';
import { hashTerm, TERM_HASH } from './term-table.ts';
import { MAX_TOKEN, STOPWORDS, tokenize } from './text.ts';
import type { Fact } from './types.ts';

/** Per ASCII code: 1 for the characters `[\p{L}\p{N}]` matches (letters and digits), else 0. */
const ASCII_WORD = new Uint8Array(128);
for (let c = 48; c <= 57; c++) ASCII_WORD[c] = 1;
for (let c = 65; c <= 90; c++) ASCII_WORD[c] = 1;
for (let c = 97; c <= 122; c++) ASCII_WORD[c] = 1;

/**
 * Stopwords as small integers, so a token is checked without a string: 6 bits per character (tokens are lower-case
 * letters and digits), at most 5 characters — under 2^30. They sit in a small open-addressing table (key + 1 per
 * slot, 0 for none; 54 keys in 512 slots, so a token that is not one usually stops at its first, empty slot): a
 * `Set<number>` lookup per token was ~0.12 µs of a fact's scan at 1M facts (profile), this is a multiply and a read.
 */
const STOP_BITS = 9;
const STOP_MASK = (1 << STOP_BITS) - 1;
const STOP_TABLE = new Int32Array(1 << STOP_BITS);
const stopSlot = (key: number): number => Math.imul(key, 0x9e3779b1) >>> (32 - STOP_BITS);
let maxStopword = 0;
for (const w of STOPWORDS) {
  const key = packToken(w, 0, w.length);
  let i = stopSlot(key);
  while (STOP_TABLE[i] !== 0 && STOP_TABLE[i] !== key + 1) i = (i + 1) & STOP_MASK;
  STOP_TABLE[i] = key + 1;
  maxStopword = Math.max(maxStopword, w.length);
}
if (maxStopword > 5) throw new Error('stopwords longer than 5 characters do not fit packToken');

/** Whether `key` (`packToken` of a token of at most 5 characters) is a stopword's. */
function isStopKey(key: number): boolean {
  for (let i = stopSlot(key); ; i = (i + 1) & STOP_MASK) {
    const v = STOP_TABLE[i]!;
    if (v === 0) return false;
    if (v === key + 1) return true;
  }
}

/** [0-9] → 1..10, [a-z] (either case) → 11..36, per character, 6 bits each. */
function packToken(s: string, start: number, end: number): number {
  let key = 0;
  for (let i = start; i < end; i++) {
    const c = lower(s.charCodeAt(i));
    key = key * 64 + (c <= 57 ? c - 47 : c - 86);
  }
  return key;
}

function lower(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c;
}

const Y = 121;
/**
 * `hashTerm`'s starting states for a WORD term (WORD is 0; written out, since this module may be evaluated before
 * `records.ts` in the shards' import cycle; test/shards/fact-terms.test.ts checks the hashes against `hashTerm`).
 */
const H1_WORD = Math.imul(0x811c9dc5, 0x01000193);
const H2_WORD = Math.imul(0x9747b28c, 0x5bd1e995);

export type FactTermFields = Pick<Fact, 'text' | 'subject' | 'predicate' | 'object'>;

export class FactTerms {
  /** Distinct terms of the last fact scanned. */
  count = 0;
  /** Its word tokens, repeats included: the document length. */
  length = 0;
  kind = new Uint8Array(64);
  /** Per term: its identity (`hashTerm`: h1, h2, shape). */
  ident = new Int32Array(64 * 3);
  /** Per term: frequency in the text (words), 0 for structural terms. */
  tf = new Int32Array(64);
  // How to spell term i: a word of ASCII text is lower(text[start, start + take)) + ('y' if addY); any other term
  // is termName(kind, a[i], b[i]).
  private text = '';
  private start = new Int32Array(64);
  private take = new Int32Array(64);
  private addY = new Uint8Array(64);
  private a: (string | undefined)[] = [];
  private b: string[] = [];
  /** Word dedupe: open addressing on h1, slots hold term index + 1, valid when their stamp is the scan's. */
  private slots = new Int32Array(256);
  private stamps = new Int32Array(256);
  private stamp = 0;

  /** Scans a fact's terms; returns the document length (word tokens). */
  scan(f: FactTermFields): number {
    this.count = 0;
    this.length = 0;
    this.text = f.text;
    if (++this.stamp === 0x7fffffff) {
      this.stamps.fill(0);
      this.stamp = 1;
    }
    if (!this.scanAscii(f.text)) this.scanStrings(f.text);
    if (f.subject !== undefined) {
      this.structural(SUBJECT, f.subject, '');
      if (f.predicate !== undefined) this.structural(SUBJECT_PREDICATE, f.subject, f.predicate);
    }
    if (f.object !== undefined && typeof f.object !== 'string') this.structural(OBJECT_ENTITY, f.object.entity, '');
    return this.length;
  }

  /** Term i's string (`w:word`, `s:subject` …, see `records.ts`). */
  name(i: number): string {
    if (this.kind[i] !== WORD || this.a[i] !== undefined) return termName(this.kind[i] as TermKind, this.a[i]!, this.b[i] ?? '');
    const start = this.start[i]!;
    const word = this.text.slice(start, start + this.take[i]!).toLowerCase();
    return 'w:' + (this.addY[i] === 1 ? word + 'y' : word);
  }

  /**
   * False (having filed nothing) when the text is not all ASCII. One pass over the characters: each token is
   * lower-cased, packed for the stopword check and hashed as it is read; once its end is known, a token whose stem
   * is shorter than itself (a plural, or longer than MAX_TOKEN) is hashed again from its stem's characters. Going
   * over each token again was a third of the scan; keeping the hash states before its last three characters
   * instead (so no token needed a second pass) cost every character of every token more than the rare second
   * pass does.
   */
  private scanAscii(text: string): boolean {
    const length = text.length;
    let i = 0;
    while (i < length) {
      let c = text.charCodeAt(i);
      if (c >= 128) return this.notAscii();
      if (ASCII_WORD[c] === 0) {
        i++;
        continue;
      }
      const start = i;
      let h1 = H1_WORD;
      let h2 = H2_WORD;
      let key = 0;
      for (;;) {
        const lc = c >= 65 && c <= 90 ? c + 32 : c;
        if (i - start < maxStopword) key = key * 64 + (lc <= 57 ? lc - 47 : lc - 86);
        h1 = Math.imul(h1 ^ lc, 0x01000193);
        h2 = Math.imul(h2 ^ lc, 0x5bd1e995);
        h2 ^= h2 >>> 13;
        if (++i === length) break;
        c = text.charCodeAt(i);
        // (A character at or above 128 ends the token; the outer loop then gives up on the text.)
        if (c >= 128 || ASCII_WORD[c] === 0) break;
      }
      // `text.ts`'s rules: digits-only singles, stopwords, plural stem, length cap.
      const n = i - start;
      const last1 = lower(text.charCodeAt(i - 1));
      if (n < 2 && (last1 < 48 || last1 > 57)) continue;
      if (n <= maxStopword && isStopKey(key)) continue;
      let take = n;
      let addY = 0;
      if (n > 3 && last1 === 115 /* s */) {
        const last2 = lower(text.charCodeAt(i - 2));
        if (last2 !== 115 /* s */ && last2 !== 117 /* u */ && last2 !== 105 /* i */) {
          if (n > 4 && last2 === 101 /* e */ && lower(text.charCodeAt(i - 3)) === 105 /* i */) {
            take = n - 3;
            addY = 1;
          } else take = n - 1;
        }
      }
      if (take + addY > MAX_TOKEN) {
        take = MAX_TOKEN;
        addY = 0;
      }
      if (take !== n) {
        // The stem's hash, from its characters (then the 'y' of a stem).
        h1 = H1_WORD;
        h2 = H2_WORD;
        for (let k = start; k < start + take; k++) {
          const lc = lower(text.charCodeAt(k));
          h1 = Math.imul(h1 ^ lc, 0x01000193);
          h2 = Math.imul(h2 ^ lc, 0x5bd1e995);
          h2 ^= h2 >>> 13;
        }
        if (addY === 1) {
          h1 = Math.imul(h1 ^ Y, 0x01000193);
          h2 = Math.imul(h2 ^ Y, 0x5bd1e995);
          h2 ^= h2 >>> 13;
        }
      }
      // The rest of hashTerm(WORD, stem, ''): the final mixing.
      h1 ^= h1 >>> 16;
      h1 = Math.imul(h1, 0x85ebca6b);
      h1 ^= h1 >>> 13;
      const t = this.word(h1, h2, (WORD << 24) | (take + addY));
      if (t >= 0) {
        this.start[t] = start;
        this.take[t] = take;
        this.addY[t] = addY;
        this.a[t] = undefined;
      }
    }
    return true;
  }

  /** Undoes what a scan of ASCII text filed before meeting another character. */
  private notAscii(): false {
    this.count = 0;
    this.length = 0;
    if (++this.stamp === 0x7fffffff) {
      this.stamps.fill(0);
      this.stamp = 1;
    }
    return false;
  }

  private scanStrings(text: string): void {
    for (const token of tokenize(text)) {
      const h = hashTerm(WORD, token, '', TERM_HASH);
      const i = this.word(h[0]!, h[1]!, h[2]!);
      if (i >= 0) {
        this.a[i] = token;
        this.b[i] = '';
      }
    }
  }

  /** Counts a word token: a new term's index (the caller records its spelling), or -1 when it repeats one. */
  private word(h1: number, h2: number, shape: number): number {
    this.length++;
    if (this.count * 2 >= this.slots.length) this.growSlots();
    const mask = this.slots.length - 1;
    for (let s = h1 & mask; ; s = (s + 1) & mask) {
      if (this.stamps[s] !== this.stamp) {
        this.stamps[s] = this.stamp;
        const i = this.push(WORD, h1, h2, shape, 1);
        this.slots[s] = i + 1;
        return i;
      }
      const i = this.slots[s]! - 1;
      if (this.ident[i * 3] === h1 && this.ident[i * 3 + 1] === h2 && this.ident[i * 3 + 2] === shape) {
        this.tf[i]!++;
        return -1;
      }
    }
  }

  private structural(kind: TermKind, a: string, b: string): void {
    const h = hashTerm(kind, a, b, TERM_HASH);
    const i = this.push(kind, h[0]!, h[1]!, h[2]!, 0);
    this.a[i] = a;
    this.b[i] = b;
  }

  private push(kind: TermKind, h1: number, h2: number, shape: number, tf: number): number {
    const i = this.count++;
    if (i === this.tf.length) this.growTerms();
    this.kind[i] = kind;
    this.ident[i * 3] = h1;
    this.ident[i * 3 + 1] = h2;
    this.ident[i * 3 + 2] = shape;
    this.tf[i] = tf;
    return i;
  }

  private growTerms(): void {
    const size = this.tf.length * 2;
    this.kind = grown(this.kind, new Uint8Array(size));
    this.ident = grown(this.ident, new Int32Array(size * 3));
    this.tf = grown(this.tf, new Int32Array(size));
    this.start = grown(this.start, new Int32Array(size));
    this.take = grown(this.take, new Int32Array(size));
    this.addY = grown(this.addY, new Uint8Array(size));
  }

  /** Doubles the dedupe table and re-files this scan's words (structural terms are never looked up). */
  private growSlots(): void {
    const size = this.slots.length * 2;
    this.slots = new Int32Array(size);
    this.stamps = new Int32Array(size);
    this.stamp = 1;
    const mask = size - 1;
    for (let i = 0; i < this.count; i++) {
      if (this.kind[i] !== WORD) continue;
      let s = this.ident[i * 3]! & mask;
      while (this.stamps[s] === 1) s = (s + 1) & mask;
      this.stamps[s] = 1;
      this.slots[s] = i + 1;
    }
  }
}

function grown<T extends Uint8Array | Int32Array>(old: T, next: T): T {
  next.set(old);
  return next;
}
