/**
 * The decoded merged postings' memory budget (`MergedPostingsCache`, 64 MB): past it, the entries of terms other
 * than words and subjects go first, so a complete cache stays complete (a word it lacks still certainly has no merged
 * postings) and keeps every word and subject. Only when words and subjects alone pass it does every entry go, and
 * the cache stops claiming to be complete.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MERGED_CACHE_POSTINGS, MergedPostingsCache } from '../../shards/merged-postings.ts';

const TOP = 3;
/** Bytes an entry of 96 postings is counted at (16 a posting plus the entry's overhead, see merged-postings.ts). */
const FULL_ENTRY = 150 + MERGED_CACHE_POSTINGS * 16;
/** More full entries than fit in 64 MB. */
const PAST_BUDGET = Math.ceil((64 * 2 ** 20) / FULL_ENTRY) + 10;

/** Files `term` with `count` postings (sequences `base`, `base` − 1, …, tf 1, length 8), as a first-use read does. */
function file(cache: MergedPostingsCache, term: string, count = MERGED_CACHE_POSTINGS, base = 10_000): void {
  cache.begin();
  for (let i = 0; i < count; i++) cache.collect(base - i, 1, 8);
  cache.finish(term, TOP);
}

test('past the budget, other terms go first and a complete cache stays complete', () => {
  const cache = new MergedPostingsCache();
  cache.reset(true);
  const named = ['w:alpha', 'w:beta', 's:person-1', 's:person-2'];
  for (const t of named) file(cache, t);
  // Subject-and-predicate lists (read on first use) until the budget is passed, several times over.
  for (let i = 0; i < PAST_BUDGET; i++) file(cache, `p:person-${i}\u0001rel`);
  for (const t of named) {
    const e = cache.get(t, TOP);
    assert.ok(e !== undefined, `${t} kept`);
    assert.is(e.count, MERGED_CACHE_POSTINGS);
    assert.is(e.postings[0], 10_000, `${t}'s postings intact`);
  }
  assert.ok(cache.lacks('w:gamma'), 'still complete: a word without an entry has no merged postings');
  // The last subject-and-predicate list filed is there: room was made for it, not taken from it.
  assert.ok(cache.get(`p:person-${PAST_BUDGET - 1}\u0001rel`, TOP) !== undefined);
  assert.ok(cache.get('p:person-0\u0001rel', TOP) === undefined, 'earlier lists were dropped');
});

test('when words and subjects alone pass the budget, every entry goes and the cache is no longer complete', () => {
  const cache = new MergedPostingsCache();
  cache.reset(true);
  for (let i = 0; i < PAST_BUDGET; i++) file(cache, `w:word${i}`);
  assert.ok(!cache.lacks('w:never-filed'), 'no longer complete: an unknown word must be read');
  assert.ok(cache.get('w:word0', TOP) === undefined, 'the first words were dropped');
  assert.ok(cache.get(`w:word${PAST_BUDGET - 1}`, TOP) !== undefined, 'the word being filed is kept');
});

test.run();
