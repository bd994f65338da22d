/**
 * `forget` must really remove the text: not only from recall, but from every byte LMDB holds (facts, episodes,
 * index blocks, identity keys), both while the fact is in the open index segment and after it was merged.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openShardStore } from '../../shards/index.ts';
import { assertEntry, entry, T0, tempDir } from './helpers.ts';

const SECRET = 'zanzibarquokka';

for (const merged of [false, true]) {
  test(`forget removes the text from the fact, episodes and index (${merged ? 'merged segment' : 'open segment'})`, async () => {
    const dir = tempDir();
    const store = openShardStore({ path: dir.path, domain: 'email', durability: 'none' });
    try {
      const r = await store.apply(assertEntry({ text: `my passport code is ${SECRET}`, subject: 'user', predicate: 'passport', object: SECRET }), 1);
      await store.apply(assertEntry({ text: `my passport code is ${SECRET}`, subject: 'user', predicate: 'passport', object: SECRET }), 2);
      await store.apply(assertEntry({ text: 'an unrelated passport note' }), 3);
      // Jumping past a segment boundary merges the first segment's postings into LMDB blocks.
      if (merged) await store.apply(assertEntry({ text: 'later fact' }), 100_000);
      assert.is(store.recall({ query: SECRET, now: T0 }).facts.length, 1);
      const f = await store.apply(entry({ op: 'forget', factId: r.factId! }), merged ? 100_001 : 4);
      assert.is(f.status, 'forgotten');
      const tomb = store.getFact(r.factId!)!;
      assert.is(tomb.status, 'forgotten');
      assert.is(tomb.text, '');
      assert.is(tomb.object, undefined);
      assert.is(store.recall({ query: SECRET, now: T0 }).facts.length, 0);
      assert.equal(store.recall({ query: 'passport', now: T0 }).facts.map((x) => x.text), ['an unrelated passport note']);
      await store.close();
      // Freed LMDB pages can still hold old bytes; a compacting copy would be needed for that. What is reachable
      // must not: every key and value of every table.
      const reopened = openShardStore({ path: dir.path, domain: 'email', durability: 'none' });
      const digestInput: string[] = [];
      const raw = reopened as unknown as { t: Record<string, { getRange(o: object): Iterable<{ key: unknown; value: Buffer }> }> };
      for (const table of Object.values(raw.t)) for (const { key, value } of table.getRange({})) digestInput.push(String(key), value.toString('latin1'));
      assert.not.ok(digestInput.some((s) => s.includes(SECRET)), 'secret still reachable in LMDB');
      await reopened.close();
    } finally {
      await store.close();
      dir.remove();
    }
  });
}

test('forget of an unknown fact is rejected, of a forgotten one is a no-op', async () => {
  const dir = tempDir();
  const store = openShardStore({ path: dir.path, domain: 'email', durability: 'none' });
  try {
    const r = await store.apply(assertEntry({ text: 'something' }), 1);
    assert.is((await store.apply(entry({ op: 'forget', factId: 'email:00000000zz:0' }), 2)).status, 'rejected');
    assert.is((await store.apply(entry({ op: 'forget', factId: r.factId! }), 3)).status, 'forgotten');
    const digest = store.digest();
    assert.is((await store.apply(entry({ op: 'forget', factId: r.factId! }), 4)).status, 'forgotten');
    assert.is(store.getFact(r.factId!)!.text, '');
    assert.ok(digest !== store.digest(), 'only appliedSeq and the op result change');
  } finally {
    await store.close();
    dir.remove();
  }
});

test('forget after the merge, from a word shared by many facts (a block with its own key) and a rare one (a bucket)', async () => {
  const dir = tempDir();
  const store = openShardStore({ path: dir.path, domain: 'email', durability: 'none' });
  try {
    // 60 facts share 'invoice': more postings than a bucket holds, so its block is stored under its own key.
    const ids: string[] = [];
    for (let i = 1; i <= 60; i++) ids.push((await store.apply(assertEntry({ text: `invoice number ${i} from vendor${i}` }), i)).factId!);
    await store.apply(assertEntry({ text: 'later fact' }), 100_000);
    const victim = ids[29]!;
    assert.ok(store.recall({ query: 'invoice', now: T0, limit: 100 }).facts.some((f) => f.id === victim));
    assert.is((await store.apply(entry({ op: 'forget', factId: victim }), 100_001)).status, 'forgotten');
    const left = store.recall({ query: 'invoice', now: T0, limit: 100 }).facts.map((f) => f.id);
    assert.is(left.length, 59);
    assert.not.ok(left.includes(victim));
    assert.is(store.recall({ query: 'vendor30', now: T0 }).facts.length, 0);
    assert.is(store.recall({ query: 'vendor31', now: T0 }).facts.length, 1);
    await store.close();
    // The same answers after reopening (nothing of the forgotten posting was kept in memory only).
    const reopened = openShardStore({ path: dir.path, domain: 'email', durability: 'none' });
    assert.equal(reopened.recall({ query: 'invoice', now: T0, limit: 100 }).facts.map((f) => f.id), left);
    await reopened.close();
  } finally {
    await store.close();
    dir.remove();
  }
});

test('stats count episodes as the observations kept: forgetting a fact takes its creating observation and its reinforcements away', async () => {
  const dir = tempDir();
  const store = openShardStore({ path: dir.path, domain: 'd', durability: 'none' });
  try {
    const episodes = (): number => store.stats().episodes;
    await store.apply(assertEntry({ text: 'kim likes maps' }, { recordedAt: T0 }), 1);
    await store.apply(assertEntry({ text: 'lee likes tea' }, { recordedAt: T0 }), 2);
    assert.is(episodes(), 2, 'two facts, each its creating observation');
    await store.apply(entry({ op: 'reinforce', factId: 'd:0000000001:0', recordedAt: T0 + 1 }), 3);
    assert.is(episodes(), 3);
    await store.apply(entry({ op: 'forget', factId: 'd:0000000001:0', recordedAt: T0 + 2 }), 4);
    assert.is(episodes(), 1, 'the forgotten fact kept neither its reinforcement nor its creating observation');
    await store.apply(entry({ op: 'forget', factId: 'd:0000000002:0', recordedAt: T0 + 3 }), 5);
    assert.is(episodes(), 0, 'a fact never reinforced: its creating observation goes');
    await store.apply(entry({ op: 'forget', factId: 'd:0000000002:0', recordedAt: T0 + 4 }), 6);
    assert.is(episodes(), 0, 'forgetting it again changes nothing');
  } finally {
    await store.close();
    dir.remove();
  }
});

test.run();
