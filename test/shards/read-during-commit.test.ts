/**
 * Reads answer from one committed state. While a batch is applied in memory and its commit is still on lmdb-js's
 * write thread, the applier's state, the write indexes and the open index segment already hold the batch; a read in
 * that window must answer exactly as before the batch or (once the write thread has made the commit visible) exactly
 * as after it — never a mix, such as the batch's postings counted in document frequencies or old postings read
 * against new facts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openShardStore, SEGMENT_SEQS, type LogEntry, type ShardStore } from '../../shards/index.ts';
import { DAY, PREDICATES, T0, tempDir } from './helpers.ts';

function asserts(from: number, n: number): { seq: number; entry: LogEntry }[] {
  return Array.from({ length: n }, (_, i) => {
    const seq = from + i;
    const subject = `s${i % 5}`;
    return {
      seq,
      entry: {
        v: 1, op: 'assert', opId: `op-${seq}`, recordedAt: T0 + seq, source: { agent: 'a' },
        fact: { text: `${subject} prefers coffee report ${i % 13}`, subject, predicate: i % 2 === 0 ? 'p0' : 'p2', object: `v${i % 7}` },
      },
    } as { seq: number; entry: LogEntry };
  });
}

function reads(store: ShardStore): unknown {
  const now = T0 + DAY;
  return {
    text: store.recall({ query: 'coffee report', now, limit: 50 }),
    subject: store.recall({ subject: 's1', query: 'coffee', now, limit: 50, includeInactive: true }),
    hops: store.recall({ query: 'prefers', now, limit: 20, hops: 1 }),
    history: store.history('s2', 'p0').map((f) => [f.id, f.status, f.confirmations]),
  };
}

test('reads racing a commit see the state before the batch or after it, never a mix', async () => {
  const dir = tempDir();
  // Synced commits: the fsync keeps the commit on the write thread long enough to read in between.
  const store = openShardStore({ path: dir.path, domain: 'd', predicates: PREDICATES, durability: 'meta' });
  const applier = (store as unknown as { applier: { state: { appliedSeq: number } } });
  try {
    let seq = 1;
    await store.applyBatch(asserts(seq, 500));
    seq += 500;
    let observed = 0;
    for (let round = 0; round < 5 && observed === 0; round++) {
      const before = reads(store);
      const pending = store.applyBatch(asserts(seq, 3000));
      seq += 3000;
      let done = false;
      void pending.then(() => (done = true));
      const during: unknown[] = [];
      while (!done) {
        if (applier.applier.state.appliedSeq > store.appliedSeq) during.push(reads(store));
        await new Promise((resolve) => setImmediate(resolve));
      }
      await pending;
      assert.is(store.appliedSeq, seq - 1);
      const after = reads(store);
      assert.not.equal(after, before);
      const json = (x: unknown): string => JSON.stringify(x);
      for (const r of during) assert.ok(json(r) === json(before) || json(r) === json(after), 'a read during the commit answers from one state');
      observed += during.length;
    }
    assert.ok(observed > 0, 'a read landed while a batch was committing');
  } finally {
    await store.close();
    dir.remove();
  }
});

test('reads racing the commits of an index merge (a segment sealed, its blocks and document frequencies written over several batches) see one state', async () => {
  const dir = tempDir();
  const store = openShardStore({ path: dir.path, domain: 'd', predicates: PREDICATES, durability: 'meta' });
  const applier = (store as unknown as { applier: { state: { appliedSeq: number } } });
  try {
    let seq = 1;
    const start = SEGMENT_SEQS - 500;
    for (; seq < start; seq += 8000) await store.applyBatch(asserts(seq, Math.min(8000, start - seq)));
    // Batches of 700 from 500 before the boundary: the first seals the segment and starts its merge, the next ones
    // carry it on (each writes its share of the blocks and their words' document frequencies), the fourth ends it.
    let observed = 0;
    for (let round = 0; round < 4; round++) {
      const before = reads(store);
      const pending = store.applyBatch(asserts(seq, 700));
      seq += 700;
      let done = false;
      void pending.then(() => (done = true));
      const during: unknown[] = [];
      while (!done) {
        if (applier.applier.state.appliedSeq > store.appliedSeq) during.push(reads(store));
        await new Promise((resolve) => setImmediate(resolve));
      }
      await pending;
      const after = reads(store);
      const json = (x: unknown): string => JSON.stringify(x);
      for (const r of during) assert.ok(json(r) === json(before) || json(r) === json(after), `round ${round}: a read during the commit answers from one state`);
      observed += during.length;
    }
    assert.ok(observed > 0, 'reads landed while merging batches were committing');
  } finally {
    await store.close();
    dir.remove();
  }
});

test('getFact and history during a commit that forgets a fact in the group of 16 being filled and creates another answer from the committed state', async () => {
  // The group being filled is held in memory by the applier (`shards/fact-groups.ts`): a reader must not see it,
  // since the changes it reads over a record come from its own snapshot.
  const dir = tempDir();
  const store = openShardStore({ path: dir.path, domain: 'd', durability: 'meta' });
  const applier = (store as unknown as { applier: { state: { appliedSeq: number } } });
  const id = (position: number): string => `d:${position.toString(36).padStart(10, '0')}:0`;
  const source = { agent: 'a' };
  try {
    let observed = 0;
    for (let round = 0; round < 100 && observed < 3; round++) {
      const base = 16 * (round + 1); // the first position of a group
      const subject = `ada${round}`;
      await store.applyBatch([
        { seq: base, entry: { v: 1, op: 'assert', opId: `a${round}`, recordedAt: T0, source, fact: { text: 'ada drinks green tea', subject, predicate: 'drinks', object: 'green tea' } } },
        { seq: base + 1, entry: { v: 1, op: 'reinforce', opId: `r${round}`, recordedAt: T0 + 1, source, factId: id(base) } },
      ]);
      const before = JSON.stringify(store.getFact(id(base)));
      const historyBefore = store.history(subject).map((f) => JSON.stringify(f));
      assert.is(store.getFact(id(base))?.confirmations, 2);
      const pending = store.applyBatch([
        { seq: base + 2, entry: { v: 1, op: 'forget', opId: `g${round}`, recordedAt: T0 + 2, source, factId: id(base) } },
        { seq: base + 3, entry: { v: 1, op: 'assert', opId: `b${round}`, recordedAt: T0 + 3, source, fact: { text: 'bob likes maps', subject: `bob${round}` } } },
      ]);
      let done = false;
      void pending.then(() => (done = true), () => (done = true));
      while (!done) {
        if (applier.applier.state.appliedSeq > store.appliedSeq) {
          observed++;
          // Before the write thread makes the commit visible, exactly the state before the batch.
          const during = JSON.stringify(store.getFact(id(base)));
          const history = store.history(subject);
          const created = store.getFact(id(base + 3));
          const visible = store.recall({ subject: `bob${round}`, now: T0 + 10 }).appliedSeq >= base + 3;
          if (!visible) {
            assert.is(during, before, `round ${round}: getFact of the fact being forgotten`);
            assert.is(created, undefined, `round ${round}: a fact of the batch still committing`);
            // The facts history finds are read as before the batch. (It may already miss the one being forgotten:
            // the open index segment's postings are in memory and the forget removed its posting there.)
            for (const f of history) assert.ok(historyBefore.includes(JSON.stringify(f)), `round ${round}: history reads ${f.id} as before the batch`);
          }
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
      await pending;
      assert.is(store.getFact(id(base))?.status, 'forgotten');
      assert.is(store.getFact(id(base + 3))?.text, 'bob likes maps');
    }
    assert.ok(observed > 0, 'a read landed while a batch was committing');
  } finally {
    await store.close();
    dir.remove();
  }
});

test.run();
