/**
 * The decoded merged postings of a term (`shards/merged-postings.ts`) after many merges: a full entry is a ring that
 * each merge overwrites from its oldest posting, and reading it from `start` gives the term's newest postings, newest
 * first — the same list as sorting every posting the segments hold. Segments here are built as the load builds them
 * (`SegmentPostings` from scanned facts), with a word in a different number of facts per segment, so merges add
 * fewer postings than an entry holds, exactly as many, and more.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FactTerms } from '../../shards/index.ts';
import { MERGED_CACHE_POSTINGS, MergedPostingsCache } from '../../shards/merged-postings.ts';
import { SegmentPostings } from '../../shards/segment.ts';

const SEGMENT = 1000;
/** Facts with `often` in them per segment: below, at and above what an entry holds, and one with none. */
const PER_SEGMENT = [7, 30, 96, 0, 150, 1, 45, 96, 13, 200, 3];

test('a full entry read from its start is the newest postings, newest first, through merges of every size', () => {
  const cache = new MergedPostingsCache();
  cache.reset(true);
  const terms = new FactTerms();
  const all: number[] = [];
  for (let s = 0; s < PER_SEGMENT.length; s++) {
    const segment = new SegmentPostings(s, s * SEGMENT);
    for (let i = 0; i < PER_SEGMENT[s]!; i++) {
      const seq = s * SEGMENT + 1 + i * 3;
      // tf and length vary, so a posting's second number is checked too.
      terms.scan({ text: `often ${'often '.repeat(i % 3)}other${i % 5}`, subject: undefined, predicate: undefined, object: undefined });
      segment.addFact(terms, seq);
      all.push(seq * 1000 + (1 + (i % 3)) * 256 + terms.length);
    }
    // Another word in every segment, so the cache sees terms the segment does not name too.
    terms.scan({ text: 'filler', subject: undefined, predicate: undefined, object: undefined });
    segment.addFact(terms, s * SEGMENT + 999);
    cache.advance(s - 1, s, segment.blocks(), (term) => segment.blockIndexOf(term), new Set());
    const entry = cache.get('w:often', s);
    if (all.length === 0) {
      assert.is(entry, undefined);
      continue;
    }
    assert.ok(entry !== undefined, `segment ${s}`);
    const expected = [...all].sort((a, b) => b - a).slice(0, MERGED_CACHE_POSTINGS);
    const got: number[] = [];
    for (let i = 0, at = entry.start; i < entry.count; i++) {
      got.push(entry.postings[at * 2]! * 1000 + entry.postings[at * 2 + 1]!);
      if (++at === entry.count) at = 0;
    }
    assert.equal(got, expected, `segment ${s}`);
  }
});

test.run();
