/**
 * Recalled facts of every shape for the reply-writer tests (`fact-pack`, `fact-table`): optional fields present or
 * not, entity or literal objects, non-ASCII and long text, every number range. Deterministic, so a failure names a
 * reproducible case.
 */
import type { RecalledFact } from '../../shards/index.ts';
import { prng } from '../../bench/store-workload.ts';

/** A deterministic PRNG (the store bench's mulberry32), so a failure names a reproducible case. */
export { prng };

export const TEXTS = [
  '',
  'short',
  'exactly thirty-one characters!!',
  'exactly thirty-two characters!!!',
  'ünïcödé in a short one',
  'emoji 🙂 and a surrogate pair',
  '日本語のテキスト',
  'x'.repeat(255),
  'y'.repeat(256),
  'é'.repeat(200),
  'z'.repeat(70_000),
];
export const NUMBERS = [0, 1, 31, 127, 128, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, -1, -32, -33, -128, -129, -32_768, -32_769, -(2 ** 31), -(2 ** 31) - 1, 0.5, 0.8, 1e-9, 19.166552003027004, -2.5];

export function fact(r: () => number, i: number): RecalledFact {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const maybe = <T>(v: T): T | undefined => (r() < 0.5 ? v : undefined);
  const t = 1_795_491_943_579 + Math.floor(r() * 1e9);
  const f: Record<string, unknown> = {
    id: `email:${i.toString(36).padStart(10, '0')}:0`,
    domain: 'email',
    text: pick(TEXTS),
    subject: maybe(pick(['user', 'Dana Ölund', 'ent8013'])),
    predicate: maybe('prefers'),
    object: maybe(r() < 0.5 ? pick(TEXTS) : { entity: pick(['dana', 'Zoë']) }),
    confidence: pick(NUMBERS),
    halfLifeDays: 30,
    observedAt: t,
    validFrom: t,
    validTo: maybe(t + 1000),
    recordedAt: t + 1,
    invalidatedAt: maybe(t + 2),
    reinforcedAt: t + 3,
    confirmations: pick(NUMBERS),
    source: { agent: 'agent-a', ...(r() < 0.5 ? { task: 't-1' } : {}), ...(r() < 0.5 ? { node: 'mini-1' } : {}) },
    status: pick(['active', 'superseded', 'retracted']),
    seq: i,
    episodeId: `email:${i}/e`,
    effectiveConfidence: pick(NUMBERS),
    score: pick(NUMBERS),
    hop: 0,
  };
  for (const k of Object.keys(f)) if (f[k] === undefined) delete f[k];
  return f as unknown as RecalledFact;
}
