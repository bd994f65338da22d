/**
 * Changes to stored facts are appended to `changes` (`shards/fact-changes.ts`), never written over the fact's own
 * record — except forgetting, which must remove the text. Every read (getFact, history, recall with and without
 * `asOf`, a reopened store) sees the fact as it now stands.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { open } from 'lmdb';
import { openShardStore, type Fact, type LogEntry, type ShardStore } from '../../shards/index.ts';
import { assertEntry, DAY, entry, PREDICATES, T0, tempDir } from './helpers.ts';

/** The raw fact records by position and the `changes` records (the store must be closed). */
async function rawTables(path: string): Promise<{ facts: Map<number, Buffer>; changes: Buffer[] }> {
  const env = open({ path, maxDbs: 16 });
  try {
    const facts = new Map<number, Buffer>();
    // Groups of 16 positions (`shards/fact-groups.ts`): 16 u32 end offsets, then the records.
    for (const { key, value } of env.openDB<Buffer, number>('facts', { encoding: 'binary' }).getRange({})) {
      for (let slot = 0; slot < 16; slot++) {
        const start = slot === 0 ? 0 : value.readUInt32LE((slot - 1) * 4);
        const end = value.readUInt32LE(slot * 4);
        if (end > start) facts.set(key * 16 + slot, Buffer.from(value.subarray(64 + start, 64 + end)));
      }
    }
    const changes: Buffer[] = [];
    for (const { value } of env.openDB<Buffer, number>('changes', { encoding: 'binary' }).getRange({})) changes.push(Buffer.from(value));
    return { facts, changes };
  } finally {
    await env.close();
  }
}

test('superseding, reinforcing and retracting append changes; the records stay as first written; every read sees the change', async () => {
  const dir = tempDir();
  const opts = { path: dir.path, domain: 'd', predicates: PREDICATES, durability: 'none' as const };
  try {
    const log: LogEntry[] = [
      assertEntry({ text: 'ada lives in oslo', subject: 'ada', predicate: 'p0', object: 'oslo', validFrom: T0 }, { recordedAt: T0 }),
      assertEntry({ text: 'bob drinks tea', subject: 'bob', predicate: 'drinks', object: 'tea' }, { recordedAt: T0 + 1 }),
      assertEntry({ text: 'kim likes maps' }, { recordedAt: T0 + 2 }),
    ];
    let store = openShardStore(opts);
    for (let i = 0; i < log.length; i++) await store.apply(log[i]!, i + 1);
    await store.close();
    const before = await rawTables(dir.path);
    assert.is(before.changes.length, 0);

    store = openShardStore(opts);
    const later: LogEntry[] = [
      assertEntry({ text: 'ada lives in paris', subject: 'ada', predicate: 'p0', object: 'paris', validFrom: T0 + 10 * DAY }, { recordedAt: T0 + 10 * DAY }),
      assertEntry({ text: 'bob drinks tea', subject: 'bob', predicate: 'drinks', object: 'tea', confidence: 0.9 }, { recordedAt: T0 + 11 * DAY }),
      entry({ op: 'retract', factId: 'd:0000000003:0', recordedAt: T0 + 12 * DAY }),
    ];
    const results = [];
    for (let i = 0; i < later.length; i++) results.push(await store.apply(later[i]!, 4 + i));
    assert.equal(results.map((r) => r.status), ['superseded_previous', 'reinforced', 'retracted']);

    const check = (label: string) => {
      const oslo = store.getFact('d:0000000001:0')!;
      assert.is(oslo.status, 'superseded', label);
      assert.is(oslo.validTo, T0 + 10 * DAY, label);
      assert.is(oslo.invalidatedAt, T0 + 10 * DAY, label);
      const tea = store.getFact('d:0000000002:0')!;
      assert.is(tea.confirmations, 2, label);
      assert.ok(tea.confidence > 0.9, label);
      assert.is(store.getFact('d:0000000003:0')!.status, 'retracted', label);
      assert.equal(store.history('ada', 'p0').map((f: Fact) => [f.object, f.status]), [['oslo', 'superseded'], ['paris', 'active']], label);
      // Before the change, oslo was the value; after it, paris. Recall filters on the changed times.
      const asOf = store.recall({ query: 'ada lives', subject: 'ada', asOf: T0 + 5 * DAY, now: T0 + 20 * DAY, limit: 5 });
      assert.equal(asOf.facts.map((f) => f.object), ['oslo'], label);
      const now = store.recall({ query: 'ada lives', subject: 'ada', now: T0 + 20 * DAY, limit: 5 });
      assert.equal(now.facts.map((f) => f.object), ['paris'], label);
      const inactive = store.recall({ query: 'kim maps', includeInactive: true, now: T0 + 20 * DAY, limit: 5 });
      assert.equal(inactive.facts.map((f) => f.status), ['retracted'], label);
    };
    check('live');
    const digest = store.digest();
    await store.close();

    const after = await rawTables(dir.path);
    assert.is(after.changes.length, 3, 'one change record per change');
    for (const [seq, bytes] of before.facts) assert.ok(after.facts.get(seq)!.equals(bytes), `record ${seq} was not rewritten`);

    store = openShardStore(opts);
    check('reopened');
    assert.is(store.digest(), digest);
    await store.close();
  } finally {
    dir.remove();
  }
});

test('forgetting a changed fact rewrites its record without the text and leaves no text in the changes', async () => {
  const dir = tempDir();
  const opts = { path: dir.path, domain: 'd', predicates: PREDICATES, durability: 'none' as const };
  try {
    const store = openShardStore(opts);
    await store.apply(assertEntry({ text: 'ada secret zebra code', subject: 'ada', predicate: 'p0', object: 'zebra' }, { recordedAt: T0 }), 1);
    await store.apply(assertEntry({ text: 'ada secret zebra code', subject: 'ada', predicate: 'p0', object: 'zebra' }, { recordedAt: T0 + 1 }), 2);
    await store.apply(assertEntry({ text: 'ada open lion', subject: 'ada', predicate: 'p0', object: 'lion', validFrom: T0 + DAY }, { recordedAt: T0 + DAY }), 3);
    assert.is(store.getFact('d:0000000001:0')!.status, 'superseded');
    const forgotten = await store.apply(entry({ op: 'forget', factId: 'd:0000000001:0', recordedAt: T0 + 2 * DAY }), 4);
    assert.is(forgotten.status, 'forgotten');
    const f = store.getFact('d:0000000001:0')!;
    assert.is(f.status, 'forgotten');
    assert.is(f.text, '');
    assert.equal(store.history('ada', 'p0').map((x) => x.object), ['lion'], 'a forgotten fact leaves the index');
    assert.equal(store.recall({ query: 'zebra', includeInactive: true, now: T0 + 3 * DAY }).facts, []);
    await store.close();
    const raw = await rawTables(dir.path);
    assert.is(raw.changes.length, 3, 'reinforced, superseded, forgotten');
    assert.is(raw.facts.size, 2, 'zebra (reinforced once) and lion');
    for (const bytes of [...raw.facts.values(), ...raw.changes]) assert.not.ok(bytes.toString('latin1').includes('zebra'));
    const reopened = openShardStore(opts);
    assert.is(reopened.getFact('d:0000000001:0')!.status, 'forgotten');
    await reopened.close();
  } finally {
    dir.remove();
  }
});

test('a fact changed thousands of times reads about as fast as one changed once, and its neighbours as fast as without it', async () => {
  // Each change used to file one more entry under the fact's position in one in-memory multimap: its linear-probing
  // cluster grew with every reinforcement, and every read of the fact (and of positions whose slots it covered) walked
  // it. The reference is a store with the same facts and no hot one.
  const hotDir = tempDir();
  const plainDir = tempDir();
  const id = (position: number): string => `d:${position.toString(36).padStart(10, '0')}:0`;
  const REINFORCEMENTS = 12_000;
  const open = (path: string): ShardStore => openShardStore({ path, domain: 'd', durability: 'none' });
  let hot: ShardStore | undefined;
  let plain: ShardStore | undefined;
  try {
    hot = open(hotDir.path);
    plain = open(plainDir.path);
    // Positions 1–200: facts, 1 and 2 reinforced once; then, in `hot` only, 1 again REINFORCEMENTS times.
    for (const store of [hot, plain]) {
      await store.applyBatch(Array.from({ length: 200 }, (_, i) => ({ seq: i + 1, entry: assertEntry({ text: `fact number ${i + 1}`, subject: `s${i % 7}` }, { recordedAt: T0 + i }) })));
      await store.apply(entry({ op: 'reinforce', factId: id(1), recordedAt: T0 + DAY }), 201);
      await store.apply(entry({ op: 'reinforce', factId: id(2), recordedAt: T0 + DAY }), 202);
    }
    for (let seq = 202; seq < 202 + REINFORCEMENTS; ) {
      await hot.applyBatch(Array.from({ length: 1000 }, () => ({ seq: ++seq, entry: entry({ op: 'reinforce', factId: id(1), recordedAt: T0 + DAY + seq }) })));
    }
    /** The least time of several runs of `n` reads (µs per read): interference only ever adds. */
    const perRead = (store: ShardStore, factId: string, n = 400): number => {
      let best = Number.POSITIVE_INFINITY;
      for (let run = 0; run < 15; run++) {
        const start = performance.now();
        for (let i = 0; i < n; i++) store.getFact(factId);
        best = Math.min(best, ((performance.now() - start) * 1000) / n);
      }
      return best;
    };
    const check = (label: string, hot: ShardStore, plain: ShardStore): void => {
      assert.is(hot.getFact(id(1))!.confirmations, REINFORCEMENTS + 2, label);
      for (const store of [hot, plain]) for (const position of [1, 2, 3]) perRead(store, id(position)); // warm-up
      const slow: string[] = [];
      for (const position of [1, 2, 3, 150]) {
        const withHot = perRead(hot, id(position));
        const without = perRead(plain, id(position));
        if (withHot > without * 5) slow.push(`fact ${position}: ${withHot.toFixed(1)} µs per read, ${without.toFixed(1)} µs in a store without the hot fact`);
      }
      assert.equal(slow, [], label);
    };
    check('live', hot, plain);
    await hot.close();
    hot = open(hotDir.path);
    check('reopened', hot, plain);
  } finally {
    await hot?.close();
    await plain?.close();
    hotDir.remove();
    plainDir.remove();
  }
});

test.run();
