/**
 * Op results are stored 64 sequences to a record, built in memory and put once per batch (`shards/op-results.ts`).
 * Whatever the batching, a retried op must get its first result back — every status, including results that are
 * not a plain "created" — from the group still being filled, from a stored group, and after the store reopens.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openShardStore, type ApplyResult, type LogEntry } from '../../shards/index.ts';
import { PREDICATES, randomLog, tempDir } from './helpers.ts';

test('every op retried (same batch, later batch, after reopening) gets its first result, marked duplicate', async () => {
  const dir = tempDir();
  const opts = { path: dir.path, domain: 'd', predicates: PREDICATES, durability: 'none' as const };
  // Unique opIds (the random log repeats some), sequences with gaps across groups and index segments.
  const log = randomLog(700, 29, 200).map((x, i) => ({ seq: x.seq, entry: { ...x.entry, opId: `u-${i}` } as LogEntry }));
  let store = openShardStore(opts);
  try {
    const first: ApplyResult[] = [];
    for (let i = 0; i < log.length; i += 45) first.push(...(await store.applyBatch(log.slice(i, i + 45))));
    assert.ok(new Set(first.map((r) => r.status)).size >= 5, 'the log exercises several result kinds');
    let seq = log.at(-1)!.seq;
    // Retried within one batch, right after their first application: the group is still in memory.
    const tail = log.slice(-10);
    const again = await store.applyBatch(tail.map((x) => ({ seq: ++seq, entry: x.entry })));
    assert.equal(again, first.slice(-10).map((r) => ({ ...r, duplicate: true })));
    await store.close();
    store = openShardStore(opts);
    const replay = await store.applyBatch(log.map((x) => ({ seq: ++seq, entry: x.entry })));
    assert.equal(replay, first.map((r) => ({ ...r, duplicate: true })));
    assert.equal(store.resultOf(log[123]!.entry.opId), first[123]);
    assert.is(store.resultOf('never-seen'), undefined);
  } finally {
    await store.close();
    dir.remove();
  }
});

test.run();
