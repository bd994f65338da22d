/**
 * `shards/candidates.ts`: the relevance sums of a free-text recall and the best `n` of them, in the order a full
 * sort gives (relevance descending, then sequence descending) — checked against that sort on random sums with ties.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { addRelevance, bestCandidates, resetRelevance } from '../../shards/candidates.ts';
import { prng } from './helpers.ts';

test('the best n candidates are those of sorting every sum, in the same order', () => {
  const rnd = prng(5);
  for (let round = 0; round < 300; round++) {
    resetRelevance();
    const sums = new Map<number, number>();
    const postings = Math.floor(rnd() * 1500);
    // Few distinct term values, so equal sums (ties broken by sequence) are common.
    const values = [0.25, 0.5, 1.5, 2.75, rnd() * 3];
    for (let p = 0; p < postings; p++) {
      const seq = 1 + Math.floor(rnd() * (rnd() < 0.5 ? 300 : 2 ** 40));
      const x = values[Math.floor(rnd() * values.length)]!;
      addRelevance(seq, x);
      sums.set(seq, (sums.get(seq) ?? 0) + x);
    }
    const n = [1, 10, 40, 1000][round % 4]!;
    const expected = [...sums].sort((a, b) => b[1] - a[1] || b[0] - a[0]).slice(0, n).map(([seq, relevance]) => ({ seq, relevance }));
    assert.equal(bestCandidates(n), expected, `round ${round}: ${sums.size} candidates, n ${n}`);
  }
});

test.run();
