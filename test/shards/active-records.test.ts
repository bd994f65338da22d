/**
 * The active `one` values' records kept in memory for the applier (`shards/active-records.ts`). What it answers for
 * a position must be exactly what the store holds for it (`FactChanges.read`: the record with its newest change's
 * header over it) through supersedes, reinforcements, retractions, forgets and alias resolution, in the store that
 * applied the log and in one reopened from disk (which fills it at open). And the slot mechanics on their own:
 * a freed slot is reused, a change replaces only the header, a record longer than a slot is not kept.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openShardStore, type ShardStore } from '../../shards/index.ts';
import { ActiveRecords } from '../../shards/active-records.ts';
import { HEADER_BYTES } from '../../shards/fact-codec.ts';
import { PREDICATES, randomLog, tempDir } from './helpers.ts';

interface Internals {
  indexes: { activeRecords: ActiveRecords };
  changes: { read(seq: number): Buffer | undefined };
  applier: { state: { appliedSeq: number; offset: number } };
}

/** Checks every kept record against the store's own read; returns how many were kept. */
function checkKept(store: ShardStore): number {
  const s = store as unknown as Internals;
  const last = s.applier.state.appliedSeq + s.applier.state.offset;
  let kept = 0;
  for (let seq = 1; seq <= last; seq++) {
    const mine = s.indexes.activeRecords.get(seq);
    if (mine === undefined) continue;
    kept++;
    const stored = s.changes.read(seq);
    assert.ok(stored !== undefined, `position ${seq} is kept but not stored`);
    assert.ok(Buffer.from(mine).equals(Buffer.from(stored)), `position ${seq}: kept record differs from the store's`);
  }
  return kept;
}

test('kept records equal the stored ones through a random log, and after reopening', async () => {
  const dir = tempDir();
  const log = randomLog(4000, 11);
  try {
    let store = openShardStore({ path: dir.path, domain: 'd', predicates: PREDICATES, durability: 'none' });
    for (let i = 0; i < log.length; i += 250) await store.applyBatch(log.slice(i, i + 250));
    const kept = checkKept(store);
    assert.ok(kept > 10, `some records kept (${kept})`);
    const digest = store.digest();
    await store.close();
    store = openShardStore({ path: dir.path, domain: 'd', predicates: PREDICATES, durability: 'none' });
    assert.is(checkKept(store), kept);
    assert.is(store.digest(), digest);
    await store.close();
  } finally {
    dir.remove();
  }
});

test('slots: a change replaces the header only, a dropped slot is reused, a long record is not kept', () => {
  const records = new ActiveRecords();
  const a = Buffer.alloc(200, 1);
  const b = Buffer.alloc(150, 2);
  records.keep(5, a);
  records.keep(9, b);
  const changed = Buffer.alloc(200, 7);
  records.change(5, changed);
  const got = records.get(5)!;
  assert.is(got.length, 200);
  assert.ok(got.subarray(0, HEADER_BYTES).every((x) => x === 7));
  assert.ok(got.subarray(HEADER_BYTES).every((x) => x === 1));
  records.drop(5);
  assert.is(records.get(5), undefined);
  records.change(5, changed); // not kept: nothing happens
  records.keep(12, Buffer.alloc(100, 3));
  assert.ok(records.get(12)!.every((x) => x === 3));
  assert.ok(records.get(9)!.equals(b));
  records.keep(13, Buffer.alloc(4096, 4));
  assert.is(records.get(13), undefined);
  records.clear();
  assert.is(records.get(9), undefined);
});

test.run();
