/**
 * A prune entry over many facts (review 11b, finding 9): the chosen facts' postings are removed term by term in one
 * pass per segment, so its apply grows with the facts it forgets, not with their square — and it removes exactly what
 * forgetting them one by one did, in the open segment and in merged ones.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openShardStore, SEGMENT_SEQS, type LogEntry, type ShardStore } from '../../shards/index.ts';
import { DAY, T0, tempDir } from './helpers.ts';

const source = { agent: 'test' };

/** Fact `i`: decayed away unless `kept(i)`; every fact has the words "note" and `n<i>`, and one of 50 subjects. */
function factAt(i: number, kept: (i: number) => boolean): LogEntry {
  const fresh = kept(i);
  return {
    v: 1,
    op: 'assert',
    opId: `a${i}`,
    recordedAt: T0,
    source,
    fact: {
      text: `${fresh ? 'kept' : 'faded'} note n${i} topic${i % 97}`,
      subject: `u${i % 50}`,
      predicate: 'note',
      confidence: fresh ? 0.9 : 0.2,
      observedAt: fresh ? T0 : T0 - 3 * DAY,
      halfLifeDays: fresh ? 3650 : 0.05,
    },
  };
}

function pruneOf(from: number, to: number, opId = `prune-${from}`): LogEntry {
  return { v: 1, op: 'prune', opId, recordedAt: T0, source, fromPosition: from, toPosition: to, inactiveDays: 3650, decayedBelow: 0.1 };
}

async function load(store: ShardStore, facts: number, kept: (i: number) => boolean, batch = 2000): Promise<void> {
  for (let i = 1; i <= facts; i += batch) {
    await store.applyBatch(Array.from({ length: Math.min(batch, facts - i + 1) }, (_, j) => ({ seq: i + j, entry: factAt(i + j, kept) })));
  }
}

test('a prune over a merged and the open segment forgets exactly the chosen postings; stores agree, also reopened', async () => {
  const facts = SEGMENT_SEQS + 6000;
  const kept = (i: number) => i % 3 === 0;
  const dirs = [tempDir(), tempDir()];
  const open = (path: string) => openShardStore({ path, domain: 'email', durability: 'none' });
  let a = open(dirs[0]!.path);
  const b = open(dirs[1]!.path);
  try {
    await load(a, facts, kept);
    await load(b, facts, kept, 777);
    // One entry across the segment boundary: its first part is in merged blocks, the rest in the open segment.
    const from = SEGMENT_SEQS - 10_000;
    const [r] = await a.applyBatch([{ seq: facts + 1, entry: pruneOf(from, facts + 1) }]);
    await b.applyBatch([{ seq: facts + 1, entry: pruneOf(from, facts + 1) }]);
    const chosen = Array.from({ length: facts + 1 - from }, (_, k) => from + k).filter((i) => !kept(i)).length;
    assert.is(r?.pruned, chosen);
    assert.is(a.digest(), b.digest());

    const recall = (query: string) => a.recall({ query, now: T0, minConfidence: 0, limit: 50 }).facts.map((f) => f.text);
    for (const i of [from - 1, from, from + 1, SEGMENT_SEQS - 1, SEGMENT_SEQS, SEGMENT_SEQS + 1, SEGMENT_SEQS + 2, facts]) {
      const texts = recall(`n${i}`);
      if (i >= from && !kept(i)) assert.equal(texts, [], `fact ${i} was pruned`);
      else assert.equal(texts, [`${kept(i) ? 'kept' : 'faded'} note n${i} topic${i % 97}`], `fact ${i} stays`);
    }
    // A common word: its newest postings are in the pruned range, and only the kept facts' are left there.
    const topic = a.recall({ query: 'topic5', now: T0, minConfidence: 0, limit: 1000 }).facts;
    assert.ok(topic.length > 0);
    for (const f of topic) {
      const i = Number(/ n(\d+) /.exec(f.text)![1]);
      assert.ok(i < from || kept(i), `fact ${i} was pruned but is recalled`);
    }

    // Reopened: the open segment is rebuilt from the records (tombstones have no postings) and ends the same.
    const digest = a.digest();
    await a.close();
    a = open(dirs[0]!.path);
    assert.is(a.digest(), digest);
    await a.applyBatch([{ seq: facts + 2, entry: pruneOf(1, from, 'second') }]);
    await b.applyBatch([{ seq: facts + 2, entry: pruneOf(1, from, 'second') }]);
    assert.is(a.digest(), b.digest());
    assert.is(a.recall({ query: 'faded', now: T0, minConfidence: 0, limit: 10 }).facts.length, 0);
  } finally {
    await a.close();
    await b.close();
    for (const d of dirs) d.remove();
  }
});

/** CPU milliseconds of one prune entry forgetting `facts` decayed facts (all in the open segment). */
async function pruneCpu(facts: number): Promise<number> {
  const dir = tempDir();
  const store = openShardStore({ path: dir.path, domain: 'email', durability: 'none' });
  try {
    await load(store, facts, () => false);
    const before = process.cpuUsage();
    const [r] = await store.applyBatch([{ seq: facts + 1, entry: pruneOf(1, facts + 1) }]);
    const used = process.cpuUsage(before);
    assert.is(r?.pruned, facts);
    return (used.user + used.system) / 1000;
  } finally {
    await store.close();
    dir.remove();
  }
}

test('forgetting 5x the facts in one prune costs about 5x the CPU, not 25x', async () => {
  // Before: 10k facts 0.7 s of CPU, 50k 7.5 s (each removal walked a shared word's postings from the newest).
  const small = await pruneCpu(10_000);
  const large = await pruneCpu(50_000);
  assert.ok(large / small < 8, `10k facts: ${small.toFixed(0)} ms CPU, 50k: ${large.toFixed(0)} ms (ratio ${(large / small).toFixed(1)})`);
});

test.run();
