/**
 * The write path's in-memory multimap (`shards/key-index.ts`) with 8-byte slots: a hash (int32) and a sequence
 * (uint32). Sequences above 2^31 must come back as they went in (not negative), hashes given as any 32-bit pattern
 * (signed or not) must find their entries, entries must survive the table's growth and backward-shift removal, and a
 * sequence the slot cannot hold must be refused, not stored wrapped.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KeyIndex, MAX_KEY_INDEX_SEQ } from '../../shards/key-index.ts';

/** Collects every sequence filed under `hash`. */
function all(index: KeyIndex, hash: number): number[] {
  const out: number[] = [];
  index.find(hash, (seq) => (out.push(seq), false));
  return out.sort((a, b) => a - b);
}

test('sequences up to 2^32 - 1 come back unchanged, through growth and removal', () => {
  const index = new KeyIndex();
  const big = [2 ** 31 - 1, 2 ** 31, 2 ** 31 + 5, 3_000_000_000, MAX_KEY_INDEX_SEQ];
  // Colliding hashes (one probe run) and many others, so the table grows several times with the big ones in it.
  for (const seq of big) index.add(7, seq);
  for (let i = 1; i <= 20_000; i++) index.add(i * 2654435761, i);
  assert.equal(all(index, 7), big);
  assert.is(index.find(7, (seq) => seq === 3_000_000_000), 3_000_000_000);
  assert.ok(index.remove(7, 2 ** 31));
  assert.not.ok(index.remove(7, 2 ** 31));
  assert.equal(all(index, 7), [2 ** 31 - 1, 2 ** 31 + 5, 3_000_000_000, MAX_KEY_INDEX_SEQ]);
  for (let i = 1; i <= 20_000; i++) assert.ok(index.has(i * 2654435761), `hash of ${i}`);
  assert.is(index.size, 20_000 + big.length - 1);
});

test('a hash given unsigned finds what was filed under its signed form, and the other way round', () => {
  const index = new KeyIndex();
  index.add(0xdeadbeef, 1);
  index.add(-5, 2);
  assert.ok(index.has(0xdeadbeef | 0));
  assert.equal(all(index, 0xdeadbeef | 0), [1]);
  assert.equal(all(index, 2 ** 32 - 5), [2]);
  assert.ok(index.remove(2 ** 32 - 5, 2));
  assert.not.ok(index.has(-5));
});

test('a sequence the slot cannot hold is refused', () => {
  const index = new KeyIndex();
  assert.throws(() => index.add(1, MAX_KEY_INDEX_SEQ + 1), /past the last one this store can index/);
  assert.throws(() => index.add(1, 0), /not a store position/);
  assert.is(index.size, 0);
});

test.run();
