/**
 * `historyPage`: a subject's history a page at a time, the newest recorded first, read no further than the page
 * (review session 11b, finding 4: a 100k-fact history read whole stalled the leader past its lease). Pages across
 * index segments (open, sealed, merged blocks) and after a reopen cover the whole history once each.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openShardStore, SEGMENT_SEQS, type LogEntry, type ShardStore } from '../../shards/index.ts';
import { T0, tempDir } from './helpers.ts';

const FACTS = 3_000;
/** Positions between two facts: the history spans three index segments. */
const STEP = Math.ceil((2.5 * SEGMENT_SEQS) / FACTS);

async function load(store: ShardStore): Promise<void> {
  const log: { seq: number; entry: LogEntry }[] = [];
  for (let i = 0; i < FACTS; i++) {
    const subject = i % 3 === 2 ? 'other' : 'hot';
    log.push({
      seq: 1 + i * STEP,
      entry: { v: 1, op: 'assert', opId: `o${i}`, recordedAt: T0 + i, source: { agent: 'a' }, fact: { text: `note ${i}`, subject, predicate: 'note' } },
    });
  }
  for (let i = 0; i < log.length; i += 500) await store.applyBatch(log.slice(i, i + 500));
}

function pagesOf(store: ShardStore, limit: number): { ids: string[]; pages: number } {
  const ids: string[] = [];
  let before: number | undefined;
  let pages = 0;
  for (;;) {
    const page = store.historyPage('hot', 'note', limit, before);
    pages++;
    assert.ok(page.facts.length <= limit, `page ${pages} holds at most ${limit}`);
    ids.push(...page.facts.map((f) => f.id));
    if (page.next === undefined) return { ids, pages };
    assert.ok(before === undefined || page.next < before, 'the cursor moves back');
    before = page.next;
  }
}

test('historyPage - the newest recorded page first, then older pages through the cursor, each fact once, across segments and a reopen', async () => {
  const dir = tempDir();
  let store = openShardStore({ path: dir.path, domain: 'email', durability: 'none' });
  try {
    await load(store);
    const whole = store.history('hot', 'note');
    assert.is(whole.length, 2_000);
    const first = store.historyPage('hot', 'note', 100);
    assert.is(first.facts.length, 100);
    assert.type(first.next, 'number');
    // The 100 recorded last, sorted as history sorts.
    assert.equal(
      first.facts.map((f) => f.id),
      whole.slice(-100).map((f) => f.id),
    );
    for (let round = 0; round < 2; round++) {
      for (const limit of [1, 100, 777]) {
        const { ids, pages } = pagesOf(store, limit);
        assert.is(new Set(ids).size, ids.length, `limit ${limit}: no fact twice`);
        assert.equal(new Set(ids), new Set(whole.map((f) => f.id)), `limit ${limit}: every fact`);
        assert.is(pages, Math.ceil(2_000 / limit), `limit ${limit}: pages`);
      }
      const all = store.historyPage('hot', 'note', 5_000);
      assert.is(all.next, undefined, 'a page holding everything has no cursor');
      assert.equal(all.facts, whole);
      assert.equal(store.historyPage('hot', undefined, 10).facts.length, 10);
      assert.equal(store.historyPage('nobody', 'note', 10), { facts: [] });
      await store.close();
      store = openShardStore({ path: dir.path, domain: 'email', durability: 'none' });
    }
  } finally {
    await store.close();
    dir.remove();
  }
});

test.run();
