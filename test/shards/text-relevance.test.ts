/**
 * `textRelevance` (shards/recall.ts): a subject-filtered candidate's BM25 sum over the query words, from its tokens
 * without a map of every token. It must give the bits the map gave — each query word the text holds, in the order
 * its first occurrence comes, with its frequency — or subject-filtered scores change. Checked against that sum on
 * random texts with repeats, absent and repeated query words, and empty texts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { textRelevance } from '../../shards/recall.ts';
import { termFrequencies } from '../../shards/text.ts';
import { prng } from './helpers.ts';

const bm25With = (weight: number, tf: number, len: number): number => weight * ((tf * 2.2) / (tf + 1.2 * (0.25 + (0.75 * len) / 9.3)));

function byMap(tokens: readonly string[], idf: ReadonlyMap<string, number>): number {
  let sum = 0;
  for (const [w, tf] of termFrequencies(tokens)) if (idf.has(w)) sum += bm25With(idf.get(w) ?? 0, tf, tokens.length);
  return sum;
}

test('the sum is the one over the term frequencies, bit for bit', () => {
  const rnd = prng(11);
  const vocabulary = Array.from({ length: 12 }, (_, i) => `w${i}`);
  let matched = 0;
  for (let round = 0; round < 5000; round++) {
    const tokens = Array.from({ length: Math.floor(rnd() * 30) }, () => vocabulary[Math.floor(rnd() ** 2 * vocabulary.length)]!);
    // Query words: some in the text, some not; weights with many digits, so the order of addition shows in the bits.
    const idf = new Map<string, number>();
    for (let i = 0; i < 1 + Math.floor(rnd() * 5); i++) idf.set(vocabulary[Math.floor(rnd() * vocabulary.length)]!, rnd() * 9 + 1e-7 * rnd());
    const expected = byMap(tokens, idf);
    const got = textRelevance(tokens, idf, bm25With);
    assert.ok(Object.is(got, expected), `round ${round}: ${got} !== ${expected} for ${tokens.join(' ')}`);
    if (expected > 0) matched++;
  }
  assert.ok(matched > 3000, `most texts hold a query word (${matched})`);
});

test.run();
