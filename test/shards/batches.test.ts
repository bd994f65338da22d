/**
 * Grouped log messages (group commit): a batch at log sequence s applies its entries at consecutive store positions,
 * exactly as plain entries at those sequences would, while every result reports the log sequence s.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  factIdFor,
  MAX_BATCH_ENTRIES,
  openShardStore,
  SEGMENT_SEQS,
  type ApplyResult,
  type BatchEntry,
  type LogEntry,
  type LogMessage,
  type ShardStore,
} from '../../shards/index.ts';
import { assertEntry, DAY, PREDICATES, prng, randomLog, T0, tempDir } from './helpers.ts';

type Message = { seq: number; entry: LogMessage };
type Plain = { seq: number; entry: LogEntry };

const open = (path: string): ShardStore => openShardStore({ path, domain: 'd', predicates: PREDICATES, durability: 'none' });

async function withStores<T>(n: number, body: (stores: ShardStore[], paths: string[]) => Promise<T>): Promise<T> {
  const dirs = Array.from({ length: n }, () => tempDir());
  const stores = dirs.map((d) => open(d.path));
  try {
    return await body(stores, dirs.map((d) => d.path));
  } finally {
    for (const s of stores) await s.close();
    for (const d of dirs) d.remove();
  }
}

function batch(entries: readonly LogEntry[], opId = `batch-${entries[0]?.opId ?? 'empty'}`): BatchEntry {
  return { v: 1, op: 'batch', opId, recordedAt: entries[0]?.recordedAt ?? T0, entries };
}

async function feed(store: ShardStore, log: readonly Message[], cut: number): Promise<ApplyResult[]> {
  const out: ApplyResult[] = [];
  for (let i = 0; i < log.length; i += cut) out.push(...(await store.applyBatch(log.slice(i, i + cut))));
  return out;
}

/**
 * The plain log `plain` (sequences = store positions, offset 0) grouped into messages: runs of consecutive
 * sequences become batches of 1–8 entries (a single entry is sometimes a plain message, sometimes a batch of one),
 * at the log sequences that put each entry at its plain sequence as its store position. `straddle`: one batch of 8
 * starts there (crossing an index segment boundary). Also returns each position's log sequence.
 */
function grouped(plain: readonly Plain[], seed: number, straddle?: number): { log: Message[]; logSeqOf: Map<number, number> } {
  const rnd = prng(seed);
  const log: Message[] = [];
  const logSeqOf = new Map<number, number>();
  let offset = 0;
  for (let i = 0; i < plain.length; ) {
    let k = 1;
    const want = plain[i]!.seq === straddle ? 8 : 1 + Math.floor(rnd() * 8);
    while (k < want && i + k < plain.length && plain[i + k]!.seq === plain[i]!.seq + k && plain[i + k]!.seq !== straddle) k++;
    const seq = plain[i]!.seq - offset;
    const entries = plain.slice(i, i + k).map((x) => x.entry);
    log.push({ seq, entry: k === 1 && rnd() < 0.5 ? entries[0]! : batch(entries) });
    for (let j = 0; j < k; j++) logSeqOf.set(plain[i + j]!.seq, seq);
    offset += k - 1;
    i += k;
  }
  return { log, logSeqOf };
}

/** A random plain log with dense runs around an index segment boundary (so batches cross it and its merge window). */
function plainLog(n: number, seed: number): Plain[] {
  return randomLog(n, seed, 500).map((x, i) => ({ seq: i < n / 2 ? x.seq : SEGMENT_SEQS - 600 + i, entry: x.entry }));
}

const QUERIES = ['pdf report', 'coffee meeting', 'oslo', 'budget morning note', 'tea'].flatMap((query) => [
  { query, now: T0 + 50 * DAY, limit: 30 },
  { query, now: T0 + 50 * DAY, limit: 30, asOf: T0 + 1500 * 1000, includeInactive: true },
  { query, now: T0 + 50 * DAY, limit: 10, subject: 's3', hops: 1 },
]);

/** Facts, answers and counters of two stores must match (results compared by the caller). */
function assertSameMemory(a: ShardStore, b: ShardStore, factIds: readonly string[]): void {
  for (const id of factIds) assert.equal(b.getFact(id), a.getFact(id), id);
  for (const q of QUERIES) assert.equal(b.recall(q).facts, a.recall(q).facts, JSON.stringify(q));
  for (let s = 0; s < 30; s++) {
    assert.equal(b.history(`s${s}`), a.history(`s${s}`));
    for (const p of ['p0', 'p1', 'p2']) assert.equal(b.history(`s${s}`, p), a.history(`s${s}`, p));
  }
  const { appliedSeq: _a, bytes: _b, ...sa } = a.stats();
  const { appliedSeq: _c, bytes: _d, ...sb } = b.stats();
  assert.equal(sb, sa);
}

test('a batch at log seq s gives the facts, answers and results plain entries at s..s+k-1 give', async () => {
  await withStores(2, async ([plainStore, batchStore]) => {
    const entries = [
      assertEntry({ text: 'user prefers pdf attachments', subject: 'user', predicate: 'p0', object: 'pdf' }, { recordedAt: T0 }),
      assertEntry({ text: 'user prefers links', subject: 'user', predicate: 'p0', object: 'link', validFrom: T0 + DAY }, { recordedAt: T0 + 1 }),
      assertEntry({ text: 'the budget meeting is on monday' }, { recordedAt: T0 + 2 }),
      assertEntry({ text: 'user prefers pdf attachments', subject: 'user', predicate: 'p0', object: 'pdf' }, { recordedAt: T0 + 3 }),
    ];
    await plainStore!.applyBatch([{ seq: 1, entry: assertEntry({ text: 'first' }, { opId: 'x' }) }]);
    await batchStore!.applyBatch([{ seq: 1, entry: assertEntry({ text: 'first' }, { opId: 'x' }) }]);
    const plain = await plainStore!.applyBatch(entries.map((entry, i) => ({ seq: 2 + i, entry })));
    const all = await batchStore!.applyBatch([{ seq: 2, entry: batch(entries) }]);
    assert.equal(all, plain.map((r) => ({ ...r, seq: 2 })));
    assert.equal(entries.map((e) => batchStore!.resultOf(e.opId)), all);
    assert.equal(all.map((r) => r.status), ['created', 'superseded_previous', 'created', 'recorded_superseded']);
    assert.is(batchStore!.appliedSeq, 2);
    assertSameMemory(plainStore!, batchStore!, plain.map((r) => r.factId!));
    // After the batch, a plain entry at log seq 3 takes position 6, as seq 6 does in the plain store.
    const next = assertEntry({ text: 'after the batch' }, { opId: 'after' });
    const p = await plainStore!.apply(next, 6);
    const b = await batchStore!.apply(next, 3);
    assert.is(b.factId, factIdFor('d', 6));
    assert.equal(b, { ...p, seq: 3 });
    assertSameMemory(plainStore!, batchStore!, [p.factId!]);
  });
});

test('a random mix of batches and plain entries gives the facts, answers and results of the same entries unbatched', async () => {
  const plain = plainLog(3000, 21);
  const { log, logSeqOf } = grouped(plain, 4, SEGMENT_SEQS - 3);
  assert.ok(log.length < plain.length * 0.5, 'most entries went into batches');
  await withStores(3, async ([reference, batched, recut], paths) => {
    const expected = await feed(reference!, plain, 250);
    const results = await feed(batched!, log, 40);
    assert.is(batched!.appliedSeq, log.at(-1)!.seq);
    assert.equal(results, expected.map((r) => ({ ...r, seq: logSeqOf.get(r.seq)! })));
    const factIds = [...new Set(expected.flatMap((r) => (r.factId === undefined ? [] : [r.factId])))];
    assertSameMemory(reference!, batched!, factIds);
    // Another replica of the message log, cut into other transactions and restarted twice: the same bytes.
    let other = recut!;
    for (const upTo of [log.length / 3, (2 * log.length) / 3]) {
      await feed(other, log.slice(0, Math.floor(upTo)), 7);
      await other.close();
      other = open(paths[2]!);
    }
    await feed(other, log, 97);
    assert.is(other.digest(), batched!.digest());
    assertSameMemory(reference!, other, factIds);
    await other.close();
  });
});

test('replaying batches at or below appliedSeq changes nothing; apply reports the first entry’s result', async () => {
  const { log } = grouped(plainLog(400, 8), 9);
  await withStores(1, async ([store]) => {
    await feed(store!, log, 50);
    const digest = store!.digest();
    assert.equal(await feed(store!, log, 33), []);
    assert.is(store!.digest(), digest);
    const first = log.find((m) => m.entry.op === 'batch')!;
    const inner = (first.entry as BatchEntry).entries[0]!;
    const again = await store!.apply(first.entry, first.seq);
    assert.equal(again, { ...store!.resultOf(inner.opId)!, duplicate: true });
    assert.is(again.seq, first.seq);
    assert.is(store!.digest(), digest);
  });
});

test('reopened after batches, a store keeps its offset: new facts get the next positions', async () => {
  await withStores(2, async ([store, never], paths) => {
    const entries = [0, 1, 2].map((i) => assertEntry({ text: `grouped fact ${i}` }, { opId: `g${i}` }));
    for (const s of [store!, never!]) await s.apply(batch(entries), 1);
    await store!.close();
    const reopened = open(paths[0]!);
    try {
      assert.is(reopened.appliedSeq, 1);
      assert.equal(reopened.resultOf('g2'), { seq: 1, opId: 'g2', status: 'created', factId: factIdFor('d', 3) });
      const next = assertEntry({ text: 'after reopening' }, { opId: 'next' });
      const r = await reopened.apply(next, 2);
      assert.equal(r, { seq: 2, opId: 'next', status: 'created', factId: factIdFor('d', 4) });
      assert.equal(await never!.apply(next, 2), r);
      assert.is(reopened.digest(), never!.digest());
      assert.is(reopened.getFact(factIdFor('d', 4))!.seq, 4);
      assert.is(reopened.recall({ query: 'reopening', now: T0 }).facts[0]!.id, factIdFor('d', 4));
    } finally {
      await reopened.close();
    }
  });
});

test('a repeated opId inside a batch and across batches gets its first result, marked duplicate', async () => {
  await withStores(1, async ([store]) => {
    const a = assertEntry({ text: 'alpha' }, { opId: 'a' });
    const b = assertEntry({ text: 'beta' }, { opId: 'b' });
    const results = await store!.applyBatch([{ seq: 1, entry: batch([a, b, assertEntry({ text: 'alpha again' }, { opId: 'a' })]) }]);
    const first = { seq: 1, opId: 'a', status: 'created' as const, factId: factIdFor('d', 1) };
    assert.equal(results, [first, { seq: 1, opId: 'b', status: 'created', factId: factIdFor('d', 2) }, { ...first, duplicate: true }]);
    const across = await store!.applyBatch([
      { seq: 2, entry: batch([assertEntry({ text: 'gamma' }, { opId: 'c' }), b]) },
      { seq: 3, entry: a },
    ]);
    assert.equal(across, [
      { seq: 2, opId: 'c', status: 'created', factId: factIdFor('d', 4) },
      { seq: 1, opId: 'b', status: 'created', factId: factIdFor('d', 2), duplicate: true },
      { ...first, duplicate: true },
    ]);
    assert.is(store!.stats().facts, 3);
    // Duplicates take their positions too: 1–3 (seq 1), 4–5 (seq 2), 6 (seq 3), so seq 4 creates at 7.
    assert.is((await store!.apply(assertEntry({ text: 'delta' }), 4)).factId, factIdFor('d', 7));
  });
});

test('a malformed batch is one rejected op at one position; a bad inner entry is rejected alone', async () => {
  await withStores(1, async ([store]) => {
    const ok = (i: number): LogEntry => assertEntry({ text: `fine ${i}` }, { opId: `ok-${i}` });
    const malformed: [unknown, RegExp][] = [
      ['not a list', /must be an array/],
      [[], /must not be empty/],
      [Array.from({ length: MAX_BATCH_ENTRIES + 1 }, (_, i) => ok(1000 + i)), /at most 4096/],
    ];
    let seq = 0;
    for (const [entries, message] of malformed) {
      const bad = { v: 1, op: 'batch', opId: `bad-${seq}`, recordedAt: T0, entries } as unknown as BatchEntry;
      const results = await store!.applyBatch([{ seq: ++seq, entry: bad }]);
      assert.is(results.length, 1);
      assert.is(results[0]!.status, 'rejected');
      assert.is(results[0]!.seq, seq);
      assert.is(results[0]!.opId, `bad-${seq - 1}`);
      assert.is(results[0]!.error!.code, 'BAD_REQUEST');
      assert.match(results[0]!.error!.message, message);
    }
    assert.is(store!.stats().facts, 0);
    // Three malformed batches took positions 1..3; this batch takes 4..7, its bad entries rejected one by one.
    const noText = { ...ok(1), opId: 'no-text', fact: {} } as unknown as LogEntry;
    const nested = batch([ok(9)], 'nested') as unknown as LogEntry;
    const results = await store!.applyBatch([{ seq: 4, entry: batch([ok(1), noText, nested, ok(2)]) }]);
    assert.equal(results.map((r) => [r.seq, r.opId, r.status, r.factId]), [
      [4, 'ok-1', 'created', factIdFor('d', 4)],
      [4, 'no-text', 'rejected', undefined],
      [4, 'nested', 'rejected', undefined],
      [4, 'ok-2', 'created', factIdFor('d', 7)],
    ]);
    assert.match(results[1]!.error!.message, /fact\.text/);
    assert.match(results[2]!.error!.message, /batches do not nest/);
    assert.equal(store!.resultOf('nested'), results[2]);
    assert.is(store!.recall({ query: 'fine', now: T0 }).facts.length, 2);
    assert.is((await store!.apply(ok(3), 5)).factId, factIdFor('d', 8));
  });
});

test('convergence with batches: any interleaving of two agents’ facts, batched any way, settles on the latest', async () => {
  const rnd = prng(17);
  for (let round = 0; round < 10; round++) {
    const facts = Array.from({ length: 12 }, (_, i) => ({
      agent: i % 2 === 0 ? 'a' : 'b',
      object: ['pdf', 'link', 'zip'][Math.floor(rnd() * 3)]!,
      validFrom: T0 + i * DAY + Math.floor(rnd() * DAY),
    }));
    const latest = facts.reduce((x, y) => (y.validFrom > x.validFrom ? y : x));
    for (let order = 0; order < 3; order++) {
      const shuffled = [...facts].sort(() => rnd() - 0.5);
      const plain: Plain[] = shuffled.map((f, k) => ({
        seq: k + 1,
        entry: { v: 1, op: 'assert', opId: `${round}-${f.agent}-${f.validFrom}`, recordedAt: T0 + 100 * DAY + k, source: { agent: f.agent }, fact: { text: `user prefers ${f.object}`, subject: 'user', predicate: 'p0', object: f.object, validFrom: f.validFrom } },
      }));
      await withStores(3, async ([x, y, z]) => {
        await feed(x!, grouped(plain, round * 10 + order).log, 1);
        await feed(y!, grouped(plain, round * 10 + order).log, 3);
        await feed(z!, plain, 5);
        assert.is(x!.digest(), y!.digest(), 'replicas of one message log are identical');
        assert.equal(x!.history('user', 'p0'), z!.history('user', 'p0'), 'batched like unbatched');
        const active = x!.history('user', 'p0').filter((f) => f.status === 'active');
        assert.is(active.length, 1);
        assert.is(active[0]!.object, latest.object, `round ${round}`);
      });
    }
  }
});

test.run();
