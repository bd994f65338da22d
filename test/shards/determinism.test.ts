/**
 * Replicas must converge: the same log gives the same bytes whatever the batching, replays change nothing, and the
 * value a `one` predicate settles on does not depend on the order two agents' facts reached the log.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openShardStore, SEGMENT_SEQS, type LogEntry, type ShardStore } from '../../shards/index.ts';
import { DAY, PREDICATES, prng, randomLog, T0, tempDir } from './helpers.ts';

async function withStores<T>(n: number, body: (stores: ShardStore[]) => Promise<T>): Promise<T> {
  const dirs = Array.from({ length: n }, () => tempDir());
  const stores = dirs.map((d) => openShardStore({ path: d.path, domain: 'd', predicates: PREDICATES, durability: 'none' }));
  try {
    return await body(stores);
  } finally {
    for (const s of stores) await s.close();
    for (const d of dirs) d.remove();
  }
}

async function feed(store: ShardStore, log: { seq: number; entry: LogEntry }[], batch: number): Promise<void> {
  for (let i = 0; i < log.length; i += batch) await store.applyBatch(log.slice(i, i + batch));
}

test('two stores fed the same 10k random entries in different batches have the same digest', async () => {
  const log = randomLog(10_000, 7);
  await withStores(2, async ([a, b]) => {
    await feed(a!, log, 1000);
    await feed(b!, log, 37);
    assert.is(a!.appliedSeq, log.at(-1)!.seq);
    assert.is(a!.digest(), b!.digest());
    assert.equal(a!.stats(), { ...b!.stats(), bytes: a!.stats().bytes });
    const q = { query: 'pdf report', now: T0 + 50 * DAY, limit: 20 };
    assert.equal(a!.recall(q), b!.recall(q));
  });
});

test('replaying a prefix or the whole log changes nothing; a restarted store continues identically', async () => {
  const log = randomLog(3000, 11);
  await withStores(2, async ([a, b]) => {
    await feed(a!, log, 500);
    const digest = a!.digest();
    await feed(a!, log.slice(0, 1200), 100);
    await feed(a!, log, 1000);
    assert.is(a!.digest(), digest);
    await feed(b!, log.slice(0, 1700), 250);
    await feed(b!, log, 333); // the replayed prefix is skipped, the rest applied
    assert.is(b!.digest(), digest);
  });
});

test('a store restarted mid-log (open index segment rebuilt from LMDB) ends byte-identical', async () => {
  const log = randomLog(6000, 5);
  const dirs = [tempDir(), tempDir()];
  const opts = (path: string) => ({ path, domain: 'd', predicates: PREDICATES, durability: 'none' as const });
  const a = openShardStore(opts(dirs[0]!.path));
  let b = openShardStore(opts(dirs[1]!.path));
  try {
    await feed(a, log, 500);
    for (const cut of [1500, 3100, 4700]) {
      await feed(b, log.slice(0, cut), 200);
      await b.close();
      b = openShardStore(opts(dirs[1]!.path));
    }
    await feed(b, log, 200);
    assert.is(b.digest(), a.digest());
    const q = { query: 'coffee meeting', now: T0 + 50 * DAY, limit: 50 };
    assert.equal(b.recall(q), a.recall(q));
  } finally {
    await a.close();
    await b.close();
    for (const d of dirs) d.remove();
  }
});

test('convergence: any interleaving of two agents’ facts settles on the value with the latest world time', async () => {
  const rnd = prng(3);
  for (let round = 0; round < 12; round++) {
    // Two agents each observe the user's preferred format at distinct world times (some values repeat).
    const agentFacts = (agent: string, offset: number) =>
      Array.from({ length: 6 }, (_, i) => ({ agent, object: ['pdf', 'link', 'zip'][Math.floor(rnd() * 3)]!, validFrom: T0 + (i * 2 + offset) * DAY + Math.floor(rnd() * DAY) }));
    const a = agentFacts('a', 0);
    const b = agentFacts('b', 1);
    const latest = [...a, ...b].reduce((x, y) => (y.validFrom > x.validFrom ? y : x));
    const interleavings = Array.from({ length: 3 }, () => {
      const out: typeof a = [];
      let i = 0;
      let j = 0;
      while (i < a.length || j < b.length) out.push(j >= b.length || (i < a.length && rnd() < 0.5) ? a[i++]! : b[j++]!);
      return out;
    });
    for (const order of interleavings) {
      const log = order.map((f, k) => ({
        seq: k + 1,
        entry: { v: 1, op: 'assert', opId: `${round}-${f.agent}-${f.validFrom}`, recordedAt: T0 + 100 * DAY + k, source: { agent: f.agent }, fact: { text: `user prefers ${f.object}`, subject: 'user', predicate: 'p0', object: f.object, validFrom: f.validFrom } } as LogEntry,
      }));
      await withStores(2, async ([x, y]) => {
        await feed(x!, log, 1);
        await feed(y!, log, 5);
        assert.is(x!.digest(), y!.digest(), 'replicas of one log are identical');
        const active = x!.history('user', 'p0').filter((f) => f.status === 'active');
        assert.is(active.length, 1);
        assert.is(active[0]!.object, latest.object, `round ${round}`);
      });
    }
  }
});


// Index segments are SEGMENT_SEQS sequences (`shards/postings.ts`); the previous one is merged over the next MERGE_SPAN.

/** 300 entries in the first segment, the rest right after the boundary (inside the merge window), with forgets. */
function mergeWindowLog(): { seq: number; entry: LogEntry }[] {
  const log = randomLog(900, 3).map((x, i) => ({ seq: i < 300 ? i + 1 : SEGMENT_SEQS - 50 + (i - 300), entry: x.entry }));
  const early = log.slice(0, 300).filter((x) => x.entry.op === 'assert');
  for (const [at, victim] of [[520, 3], [650, 40], [800, 77]] as const) {
    const e = log[at]!.entry;
    const factId = `d:${early[victim]!.seq.toString(36).padStart(10, '0')}:0`;
    log[at] = { seq: log[at]!.seq, entry: { v: 1, op: 'forget', opId: `forget-${at}`, recordedAt: e.recordedAt, source: e.source, factId } };
  }
  return log;
}

test('a segment merged across many batches, restarts and forgets inside the merge window: byte-identical', async () => {
  const log = mergeWindowLog();
  const dirs = [tempDir(), tempDir(), tempDir()];
  const opts = (path: string) => ({ path, domain: 'd', predicates: PREDICATES, durability: 'none' as const });
  const a = openShardStore(opts(dirs[0]!.path));
  const c = openShardStore(opts(dirs[2]!.path));
  let b = openShardStore(opts(dirs[1]!.path));
  try {
    await feed(a, log, 1000);
    await feed(c, log, 1);
    for (const cut of [310, 420, 521, 700]) {
      await feed(b, log.slice(0, cut), 13);
      await b.close();
      b = openShardStore(opts(dirs[1]!.path));
    }
    await feed(b, log, 13);
    assert.is(b.digest(), a.digest());
    assert.is(c.digest(), a.digest());
    const q = { query: 'coffee meeting report', now: T0 + 50 * DAY, limit: 50 };
    assert.equal(b.recall(q), a.recall(q));
    assert.equal(c.recall(q), a.recall(q));
    // Past the window: the merge completes the same way everywhere.
    const later = [{ seq: 100_000, entry: log[5]!.entry }, { seq: 100_001, entry: { ...log[6]!.entry, opId: 'later' } }];
    for (const s of [a, b, c]) await s.applyBatch(later);
    assert.is(b.digest(), a.digest());
    assert.is(c.digest(), a.digest());
    assert.equal(b.recall(q), a.recall(q));
  } finally {
    await a.close();
    await b.close();
    await c.close();
    for (const d of dirs) d.remove();
  }
});
test('the same fact again is reinforced whether its identity is in memory, being merged, or in LMDB, across restarts', async () => {
  const dir = tempDir();
  const opts = { path: dir.path, domain: 'd', predicates: PREDICATES, durability: 'none' as const };
  let store = openShardStore(opts);
  const facts = [{ text: 'user prefers tea', subject: 'user', predicate: 'p2', object: 'tea' }, { text: 'Meeting notes are in the wiki' }];
  const at = (seq: number, i: number, opId: string): { seq: number; entry: LogEntry } => ({
    seq, entry: { v: 1, op: 'assert', opId, recordedAt: T0 + seq, source: { agent: 'a' }, fact: facts[i]! },
  });
  try {
    const created = await store.applyBatch([at(1, 0, 'c0'), at(2, 1, 'c1')]);
    const ids = created.map((r) => r.factId);
    // Open segment (memory), the merge window's first sequence (sealed, unwritten), later in the window, after a
    // restart inside the window, and after the window (LMDB).
    const seqs = [3, SEGMENT_SEQS + 1, SEGMENT_SEQS + 1000, SEGMENT_SEQS + 1500, 2 * SEGMENT_SEQS + 10];
    for (const [n, seq] of seqs.entries()) {
      if (seq === SEGMENT_SEQS + 1500) {
        await store.close();
        store = openShardStore(opts);
      }
      const results = await store.applyBatch([at(seq, 0, `r0-${n}`), at(seq + 1, 1, `r1-${n}`)]);
      assert.equal(results.map((r) => r.status), ['reinforced', 'reinforced'], `at seq ${seq}`);
      assert.equal(results.map((r) => r.factId), ids, `at seq ${seq}`);
    }
    assert.is(store.getFact(ids[0]!)!.confirmations, seqs.length + 1);
  } finally {
    await store.close();
    dir.remove();
  }
});

test.run();
