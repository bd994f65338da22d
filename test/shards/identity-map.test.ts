/**
 * `IdentityMap` (`shards/term-table.ts`), the write path's table by term identity: through random sets, overwrites
 * and deletes it answers as a `Map` keyed by the same identities does — with identities crowded onto few home slots
 * (long clusters, deletes shifting them back across the table's end) and through growth and `clear`.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { IdentityMap } from '../../shards/term-table.ts';
import { prng } from './helpers.ts';

function check(homes: number, ops: number, seed: number): void {
  const random = prng(seed);
  const map = new IdentityMap<number>();
  const reference = new Map<string, number>();
  // Identities: h1 from a few values (so many share a home slot, including the last slots of the table), h2 and
  // shape telling them apart.
  const identity = (): [number, number, number] => {
    const home = Math.floor(random() * homes);
    const h1 = home < homes / 2 ? home : 1023 - (home - Math.floor(homes / 2)); // near slot 0 and near slot 1023
    return [h1 | (Math.floor(random() * 4) << 20), Math.floor(random() * 8) - 4, Math.floor(random() * 3)];
  };
  for (let i = 0; i < ops; i++) {
    const [h1, h2, shape] = identity();
    const key = `${h1},${h2},${shape}`;
    const r = random();
    if (r < 0.55) {
      map.set(h1, h2, shape, i);
      reference.set(key, i);
    } else if (r < 0.9) {
      map.delete(h1, h2, shape);
      reference.delete(key);
    } else assert.is(map.get(h1, h2, shape), reference.get(key), `get ${key} at op ${i}`);
    assert.is(map.size, reference.size, `size at op ${i}`);
  }
  for (const [key, value] of reference) {
    const [h1, h2, shape] = key.split(',').map(Number) as [number, number, number];
    assert.is(map.get(h1, h2, shape), value, `final ${key}`);
  }
}

test('answers as a Map through sets, overwrites and deletes in crowded clusters', () => {
  for (let seed = 1; seed <= 20; seed++) check(6, 3000, seed);
});

test('answers as a Map through growth (more identities than the first table holds)', () => {
  check(4000, 20000, 99);
  const map = new IdentityMap<string>();
  for (let i = 0; i < 5000; i++) map.set(i * 7919, i, 1, `v${i}`);
  for (let i = 0; i < 5000; i += 2) map.delete(i * 7919, i, 1);
  for (let i = 0; i < 5000; i++) assert.is(map.get(i * 7919, i, 1), i % 2 === 0 ? undefined : `v${i}`);
  map.clear();
  assert.is(map.size, 0);
  assert.is(map.get(7919, 1, 1), undefined);
});

test.run();
