/**
 * The synthetic memory `bench:store` loads and queries, shared with `bench/store-load.ts` so both load the same
 * facts: subjects from a few thousand entities, a few dozen predicates (8 of them `one`), text drawn from a
 * Zipf-distributed vocabulary, and recall queries of 2–4 such words (a fifth also filtered by subject).
 * Seeded: every run of a process draws the same sequence.
 */
import type { LogEntry, RecallQuery } from '../shards/index.ts';

export const ENTITIES = 3000;
export const VOCABULARY = 20_000;
export const T0 = Date.UTC(2026, 0, 1);

/** mulberry32: a small seeded PRNG, so every run loads the same facts. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SYLLABLES = ['ka', 'lo', 'mi', 'ne', 'ru', 'ta', 'vo', 'shi', 'en', 'dar', 'pel', 'gor', 'fin', 'bri', 'zu', 'qua'];
const words: string[] = [];
for (let i = 0; words.length < VOCABULARY; i++) {
  let w = '';
  for (let n = i + 1; n > 0; n = Math.floor(n / SYLLABLES.length)) w += SYLLABLES[n % SYLLABLES.length];
  words.push(w + (i % 7 === 0 ? 'x' : ''));
}
// Zipf (s = 1) sampling by binary search over the cumulative weights.
const cumulative: number[] = [];
let total = 0;
for (let r = 1; r <= VOCABULARY; r++) cumulative.push((total += 1 / r));

const predicates = Array.from({ length: 40 }, (_, i) => `rel_${i}`);
export const onePredicates = Object.fromEntries(predicates.slice(0, 8).map((p) => [p, { cardinality: 'one' as const, halfLifeDays: 60 }]));
export const entity = (i: number): string => `person-${i}`;

/** A stream of facts and queries drawn from one seeded generator. */
export class Workload {
  private readonly random: () => number;

  constructor(seed = 42) {
    this.random = prng(seed);
  }

  private zipfIndex(): number {
    const x = this.random() * total;
    let lo = 0;
    let hi = VOCABULARY - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.random() * xs.length)]!;
  }

  /** The assert the log carries at `seq` (its opId and times follow from `seq`). */
  entry(seq: number): LogEntry {
    const random = this.random;
    const n = 6 + Math.floor(random() * 8);
    const text: string[] = [];
    for (let i = 0; i < n; i++) text.push(words[this.zipfIndex()]!);
    const recordedAt = T0 + seq * 50;
    const source = { agent: `agent-${seq % 7}`, node: `mini-${seq % 3}` };
    const opId = `agent-${seq % 7}-${seq.toString(36).padStart(10, '0')}`;
    if (random() < 0.15) return { v: 1, op: 'assert', opId, recordedAt, source, fact: { text: text.join(' ') } };
    const subject = entity(Math.floor(random() ** 2 * ENTITIES));
    const predicate = this.pick(predicates);
    const object = random() < 0.3 ? { entity: entity(Math.floor(random() * ENTITIES)) } : words[this.zipfIndex()]!;
    return {
      v: 1, op: 'assert', opId, recordedAt, source,
      fact: { text: `${subject} ${text.join(' ')}`, subject, predicate, object, confidence: 0.5 + random() * 0.5 },
    };
  }

  query(now: number): RecallQuery {
    const random = this.random;
    const q = Array.from({ length: 2 + Math.floor(random() * 3) }, () => words[this.zipfIndex()]!).join(' ');
    if (random() < 0.2) return { query: q, subject: entity(Math.floor(random() ** 2 * ENTITIES)), now, limit: 10 };
    return { query: q, now, limit: 10 };
  }
}
