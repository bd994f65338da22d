/**
 * The applier computes the next entries' opId and identity hashes ahead and loads their index slots together
 * (`Applier.prefetch`). What it computed must never stand in for a different entry or for arguments that changed:
 * an alias resolved between prefetch and apply (the identity is hashed from the resolved subject and object), the
 * same opId twice in one batch, the same entry object at two sequences, malformed entries, grouped messages longer
 * than the prefetch window between plain ones. Each log here is applied as one large batch and one message per
 * batch: the results (duplicates, reinforcements) and the content digest must be the same both ways.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openShardStore, type ApplyResult, type LogEntry, type LogMessage } from '../../shards/index.ts';
import { PREFETCH_ENTRIES } from '../../shards/apply.ts';
import { assertEntry, entry, T0, tempDir } from './helpers.ts';

type Log = { seq: number; entry: LogMessage }[];

/** Applies `log` as one batch and as one message per batch; returns both stores' results and digests. */
async function bothWays(log: Log): Promise<{ whole: ApplyResult[]; single: ApplyResult[]; digests: [string, string] }> {
  const a = tempDir();
  const b = tempDir();
  const whole = openShardStore({ path: a.path, domain: 'd', durability: 'none', predicates: { lives_in: { cardinality: 'one', halfLifeDays: 30 } } });
  const single = openShardStore({ path: b.path, domain: 'd', durability: 'none', predicates: { lives_in: { cardinality: 'one', halfLifeDays: 30 } } });
  try {
    const wholeResults = await whole.applyBatch(log);
    const singleResults: ApplyResult[] = [];
    for (const m of log) singleResults.push(...(await single.applyBatch([m])));
    return { whole: wholeResults, single: singleResults, digests: [whole.digest(), single.digest()] };
  } finally {
    await whole.close();
    await single.close();
    a.remove();
    b.remove();
  }
}

test('an alias defined in the batch: the identity is hashed from the resolved subject, so the alias reinforces', async () => {
  const log: Log = [
    { seq: 1, entry: assertEntry({ text: 'lives in Oslo', subject: 'ada', predicate: 'lives_in', object: 'Oslo' }) },
    { seq: 2, entry: entry({ op: 'entity', entity: { id: 'ada', aliases: ['Ada L'] } }) },
    // Prefetched with subject 'Ada L'; applied with 'ada' (the alias resolves): the same fact as seq 1.
    { seq: 3, entry: assertEntry({ text: 'lives in Oslo', subject: 'Ada L', predicate: 'lives_in', object: 'Oslo' }, { recordedAt: T0 + 1 }) },
    { seq: 4, entry: assertEntry({ text: 'knows Ada', subject: 'bob', predicate: 'knows', object: { entity: 'Ada L' } }) },
    { seq: 5, entry: assertEntry({ text: 'knows Ada', subject: 'bob', predicate: 'knows', object: { entity: 'ada' } }, { recordedAt: T0 + 2 }) },
  ];
  const { whole, single, digests } = await bothWays(log);
  assert.equal(whole.map((r) => r.status), ['created', 'entity', 'reinforced', 'created', 'reinforced']);
  assert.equal(whole, single);
  assert.is(digests[0], digests[1]);
});

test('repeated opIds and entry objects, malformed entries and long grouped messages between plain ones', async () => {
  const log: Log = [];
  let seq = 0;
  const repeated = assertEntry({ text: 'the same entry object twice', subject: 's1', predicate: 'p' });
  for (let i = 0; i < 3 * PREFETCH_ENTRIES; i++) {
    const r = i % 17;
    let e: LogMessage;
    if (r === 3) e = { ...assertEntry({ text: `again ${i % 5}`, subject: `s${i % 4}` }), opId: `op-dup-${i % 5}` };
    else if (r === 5) e = repeated;
    else if (r === 7) e = null as unknown as LogEntry;
    else if (r === 9) e = { v: 1, op: 'assert', recordedAt: T0, source: { agent: 'a' }, fact: { text: 'no opId' } } as unknown as LogEntry;
    else if (r === 11) {
      const inner: unknown[] = [];
      for (let k = 0; k < PREFETCH_ENTRIES + 10; k++) {
        inner.push(k % 13 === 0 ? { v: 1, op: 'assert', opId: 7, fact: {} } : assertEntry({ text: `grouped ${k % 9} words`, subject: `s${k % 3}`, predicate: k % 2 === 0 ? 'lives_in' : 'p', object: `o${k % 4}` }, { opId: k % 10 === 0 ? 'op-dup-1' : undefined }));
      }
      e = { v: 1, op: 'batch', opId: `group-${i}`, recordedAt: T0, entries: inner as LogEntry[] };
    } else e = assertEntry({ text: `fact ${i % 23} text`, subject: `s${i % 6}`, predicate: i % 3 === 0 ? 'lives_in' : 'p', object: i % 2 === 0 ? { entity: `e${i % 3}` } : `v${i % 4}` }, { recordedAt: T0 + i });
    log.push({ seq: (seq += 1 + (i % 29 === 0 ? 2 : 0)), entry: e });
  }
  const { whole, single, digests } = await bothWays(log);
  assert.equal(whole, single);
  assert.is(digests[0], digests[1]);
  assert.ok(whole.some((r) => r.duplicate === true), 'some ops were duplicates');
  assert.ok(whole.some((r) => r.status === 'reinforced'), 'some facts were reinforced');
  assert.ok(whole.some((r) => r.status === 'rejected'), 'malformed entries were rejected');
});

test.run();
