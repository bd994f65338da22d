/**
 * A segment whose merge has committed hands its arrays to a later segment (`SegmentPostings.release`), so the next
 * open segment does not fault in fresh pages. The later segment must hold only its own postings (the reused pool is
 * not cleared: every chunk is written before it is read), and the released one must refuse any further use rather
 * than answer from arrays that now belong to another segment.
 *
 * The spare arrays are module state: this file runs in its own process (test/run.ts), so no other test's segments
 * take or leave them.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FactTerms } from '../../shards/index.ts';
import { SegmentPostings } from '../../shards/segment.ts';

const SEGMENT = 65536;

/** Files `n` facts from `seq` on, each with the words `prefix0 … prefix{k}` and a common word. */
function fill(segment: SegmentPostings, first: number, n: number, prefix: string): void {
  const terms = new FactTerms();
  for (let i = 0; i < n; i++) {
    terms.scan({ text: `common ${prefix}${i % 50} ${prefix}${i % 7}x ${'again '.repeat(i % 3)}`, subject: `${prefix}-s${i % 9}`, predicate: undefined, object: undefined });
    segment.addFact(terms, first + i);
  }
}

function newest(segment: SegmentPostings, term: string): number[] {
  const out: number[] = [];
  segment.forNewest(term, 100_000, Number.MAX_SAFE_INTEGER, (seq) => out.push(seq));
  return out;
}

test('a segment built on released arrays holds only its own postings; the released one refuses use', () => {
  const first = new SegmentPostings(1, SEGMENT);
  fill(first, SEGMENT, 3000, 'alpha');
  const size = first.size();
  const before = newest(first, 'w:common');
  assert.is(before.length, 3000);
  first.blocks();
  first.release();
  assert.throws(() => newest(first, 'w:common'), /used after release/);
  assert.throws(() => first.blocks(), /used after release/);

  // Same expected size: takes the released arrays.
  const second = new SegmentPostings(2, 2 * SEGMENT, size);
  assert.ok(second.reusedArrays, 'the second segment took the released arrays (the speed-up this test is for)');
  fill(second, 2 * SEGMENT, 1000, 'beta');
  assert.equal(newest(second, 'w:alpha3'), []);
  assert.equal(newest(second, 's:alpha-s1'), []);
  assert.is(newest(second, 'w:common').length, 1000);
  assert.ok(newest(second, 'w:common').every((seq) => seq >= 2 * SEGMENT && seq < 2 * SEGMENT + 1000));
  const beta3 = newest(second, 'w:beta3');
  assert.equal(beta3, Array.from({ length: 20 }, (_, k) => 2 * SEGMENT + 3 + 50 * (19 - k)));
  // Its blocks hold exactly its postings: one per fact for the common word.
  const blocks = second.blocks();
  const r = second.blockIndexOf('w:common');
  assert.is(blocks.postings(r), 1000);
});

test.run();
