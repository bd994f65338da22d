/**
 * The one workload every system in the bench runs: deterministic synthetic facts (a subject entity, a predicate,
 * an object, six words of text from a 50k-word vocabulary) and recall queries made of three words taken from a
 * stored fact, so every query has at least one hit and the candidate set grows with the facts stored — about
 * 3 × 6 × facts / 50k candidates per query (≈ 360 at 1M), the same for shardmind and Redis.
 */

export const VOCABULARY = 50_000;
export const ENTITIES = 10_000;
export const PREDICATES = 50;
export const WORDS_PER_FACT = 6;
export const WORDS_PER_QUERY = 3;

export interface BenchFact {
  readonly text: string;
  readonly words: readonly string[];
  readonly subject: string;
  readonly predicate: string;
  readonly object: string;
}

const SYLLABLES = ['ka', 'lo', 'mi', 're', 'tu', 'sa', 'ne', 'vo', 'di', 'pa', 'qe', 'zu', 'fi', 'go', 'hy', 'wa'];

/** Word k of the vocabulary: its base-16 digits spelled as syllables, so words are distinct, short and tokenizable. */
export function word(k: number): string {
  let s = '';
  let n = k + 16 * 16; // at least three syllables, never a stop word
  while (n > 0) {
    s += SYLLABLES[n % 16];
    n = Math.floor(n / 16);
  }
  return s;
}

/** A 32-bit integer hash (murmur3 finalizer): the same i gives the same fact in every system and every run. */
export function mix(i: number, salt = 0): number {
  let h = (i ^ Math.imul(salt + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

export function factAt(i: number): BenchFact {
  const words = Array.from({ length: WORDS_PER_FACT }, (_, j) => word(mix(i, j + 1) % VOCABULARY));
  const subject = `ent${mix(i, 101) % ENTITIES}`;
  const predicate = `rel${mix(i, 102) % PREDICATES}`;
  const object = `val${mix(i, 103) % 1000}`;
  return { text: words.join(' '), words, subject, predicate, object };
}

/**
 * The i-th recall query against a store holding facts 0..stored-1: three words of one of them — the first three
 * of `factAt(from).words`, made without the rest of the fact (the load generator's own work is not what the bench
 * measures).
 */
export function queryAt(i: number, stored: number): { readonly words: readonly string[]; readonly text: string; readonly from: number } {
  const from = mix(i, 201) % Math.max(1, stored);
  const words = Array.from({ length: WORDS_PER_QUERY }, (_, j) => word(mix(from, j + 1) % VOCABULARY));
  return { words, text: words.join(' '), from };
}

/**
 * `queryAt(i, stored).text` alone, made without the words' array: the recall loops send only the text, and the
 * array (`Array.from` with its callback) was most of the ~1 µs per recall the load generator spent making its own
 * query — work no agent does for its query (decisions §56).
 */
export function queryTextAt(i: number, stored: number): string {
  const from = mix(i, 201) % Math.max(1, stored);
  let text = word(mix(from, 1) % VOCABULARY);
  for (let j = 1; j < WORDS_PER_QUERY; j++) text += ` ${word(mix(from, j + 1) % VOCABULARY)}`;
  return text;
}
