/**
 * Recall decodes the store's state record (applied sequence, document counts for BM25) again only when its bytes
 * changed (`snapshotState` in `store.ts`). After every commit — most of which leave the record the same length —
 * a recall must report the new applied sequence and score with the new counts: exactly what a store that was
 * given the same entries and never recalled before answers.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openShardStore, type LogEntry } from '../../shards/index.ts';
import { DAY, PREDICATES, T0, assertEntry, tempDir } from './helpers.ts';

const WORDS = ['coffee', 'report', 'budget', 'oslo', 'tea', 'meeting'];

function entryAt(i: number): LogEntry {
  return assertEntry({ text: `${WORDS[i % WORDS.length]} ${WORDS[(i * 5 + 1) % WORDS.length]} note ${i}` }, { recordedAt: T0 + i * 1000, opId: `op-${i}` });
}

test('a recall after each commit sees its applied sequence and counts, as a store never recalled before does', async () => {
  const warm = tempDir();
  const fresh = tempDir();
  const store = openShardStore({ path: warm.path, domain: 'd', predicates: PREDICATES });
  try {
    const query = { query: 'coffee report', now: T0 + DAY, limit: 5 };
    for (let seq = 1; seq <= 24; seq++) {
      await store.apply(entryAt(seq), seq);
      // Recalled twice: the second answer comes from the state decoded by the first.
      const first = store.recall(query);
      const second = store.recall(query);
      assert.is(first.appliedSeq, seq);
      assert.equal(second, first);
      if (seq % 6 !== 0) continue;
      const other = openShardStore({ path: `${fresh.path}/${seq}`, domain: 'd', predicates: PREDICATES });
      try {
        for (let s = 1; s <= seq; s++) await other.apply(entryAt(s), s);
        assert.equal(JSON.stringify(first), JSON.stringify(other.recall(query)), `after seq ${seq}`);
      } finally {
        await other.close();
      }
    }
  } finally {
    await store.close();
    warm.remove();
    fresh.remove();
  }
});

test.run();
