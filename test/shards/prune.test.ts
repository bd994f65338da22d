/**
 * Compaction of the memory (`prune` entries, DESIGN: facts stay in history "until compaction"): over a range of
 * store positions, facts closed more than `inactiveDays` before the entry's time — and, when asked, active facts
 * decayed below a confidence — are forgotten: their text leaves the store, recall and history; a tombstone stays.
 * Deterministic (two stores fed the same entries have the same digest), replay-safe, and bad ranges are rejected.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_PRUNE_SPAN, openShardStore, type LogEntry, type ShardStore } from '../../shards/index.ts';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 5);
const source = { agent: 'test' };

function assertAt(opId: string, at: number, fact: { text: string; subject?: string; predicate?: string; object?: string; halfLifeDays?: number }): LogEntry {
  return { v: 1, op: 'assert', opId, recordedAt: at, source, fact };
}

function pruneAt(opId: string, at: number, o: { from: number; to: number; inactiveDays: number; decayedBelow?: number }): LogEntry {
  return {
    v: 1,
    op: 'prune',
    opId,
    recordedAt: at,
    source,
    fromPosition: o.from,
    toPosition: o.to,
    inactiveDays: o.inactiveDays,
    ...(o.decayedBelow !== undefined ? { decayedBelow: o.decayedBelow } : {}),
  };
}

/** Six facts: an old value and its replacement, a short-lived fact, a durable one, a recent replacement pair. */
const HISTORY: LogEntry[] = [
  assertAt('a1', T0, { text: 'The user prefers PDF attachments', subject: 'user', predicate: 'attachment_format', object: 'pdf' }),
  assertAt('a2', T0 + 1 * DAY, { text: 'The user now prefers links to shared files', subject: 'user', predicate: 'attachment_format', object: 'link' }),
  assertAt('a3', T0, { text: 'The user is tired today', subject: 'user', predicate: 'mood', object: 'tired', halfLifeDays: 1 }),
  assertAt('a4', T0, { text: 'The user lives in Lisbon', subject: 'user', predicate: 'home_city', object: 'lisbon' }),
  assertAt('a5', T0 + 35 * DAY, { text: 'Bob reviews the budget on Mondays', subject: 'bob', predicate: 'review_day', object: 'monday' }),
  assertAt('a6', T0 + 36 * DAY, { text: 'Bob reviews the budget on Tuesdays now', subject: 'bob', predicate: 'review_day', object: 'tuesday' }),
];

async function storeWith(dir: string, name: string, entries: readonly LogEntry[]): Promise<ShardStore> {
  const store = await openShardStore({
    path: join(dir, name),
    domain: 'email',
    durability: 'none',
    predicates: {
      attachment_format: { cardinality: 'one', halfLifeDays: 365 },
      review_day: { cardinality: 'one', halfLifeDays: 365 },
      home_city: { cardinality: 'one', halfLifeDays: 3650 },
    },
  });
  await store.applyBatch(entries.map((entry, i) => ({ seq: i + 1, entry })));
  return store;
}

test('prune forgets facts closed long ago and, when asked, facts decayed away; keeps the rest; deterministic', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sm-prune-'));
  const stores: ShardStore[] = [];
  try {
    const at = T0 + 40 * DAY;
    const prune = pruneAt('p1', at, { from: 1, to: 7, inactiveDays: 30, decayedBelow: 0.05 });
    const a = await storeWith(dir, 'a', [...HISTORY, prune]);
    const b = await storeWith(dir, 'b', [...HISTORY, prune]);
    stores.push(a, b);
    assert.is(a.resultOf('p1')?.status, 'pruned');
    assert.is(a.digest(), b.digest(), 'every replica prunes the same facts');

    const status = (pos: number) => a.getFact(`email:${pos.toString(36).padStart(10, '0')}:0`);
    // a1 was superseded 39 days before the prune (> 30): forgotten. a3 decayed to ~0 (half-life 1 day): forgotten.
    assert.equal([status(1)?.status, status(1)?.text], ['forgotten', '']);
    assert.equal([status(3)?.status, status(3)?.text], ['forgotten', '']);
    // a2 and a4 are active and barely decayed; a5 was superseded 4 days before the prune: kept.
    assert.equal([status(2)?.status, status(4)?.status, status(5)?.status, status(6)?.status], ['active', 'active', 'superseded', 'active']);
    assert.is(status(5)?.text, 'Bob reviews the budget on Mondays');

    const recalled = a.recall({ query: 'PDF attachments links tired', now: at, includeInactive: true });
    assert.not.ok(recalled.facts.some((f) => f.text.includes('PDF') || f.text.includes('tired')), 'pruned text is not recalled');
    // As with `forget`, the fact leaves history with its index entries; only its tombstone, by id, remains.
    const history = a.history('user', 'attachment_format');
    assert.equal(
      history.map((f) => [f.status, f.text]),
      [['active', 'The user now prefers links to shared files']],
    );
    assert.is(a.stats().activeFacts, 3, 'a2, a4 and a6 are active');
  } finally {
    for (const s of stores) await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('prune counts what it forgot, only inside its range and only once; replay is a no-op; bad ranges are rejected', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sm-prune-'));
  const stores: ShardStore[] = [];
  try {
    const at = T0 + 40 * DAY;
    const store = await storeWith(dir, 'c', HISTORY);
    stores.push(store);
    // Positions 2..6 only: a1 (position 1) is out of range; without decayedBelow, a3 stays.
    const [first] = await store.applyBatch([{ seq: 7, entry: pruneAt('p-range', at, { from: 2, to: 7, inactiveDays: 30 }) }]);
    assert.equal([first?.status, first?.pruned], ['pruned', 0]);
    const [wide] = await store.applyBatch([{ seq: 8, entry: pruneAt('p-wide', at, { from: 1, to: 9, inactiveDays: 30 }) }]);
    assert.equal([wide?.status, wide?.pruned], ['pruned', 1]);
    const [again] = await store.applyBatch([{ seq: 9, entry: pruneAt('p-again', at, { from: 1, to: 9, inactiveDays: 30 }) }]);
    assert.is(again?.pruned, 0, 'a tombstone is not pruned twice');
    const digest = store.digest();
    assert.equal(await store.applyBatch([{ seq: 8, entry: pruneAt('p-wide', at, { from: 1, to: 9, inactiveDays: 30 }) }]), [], 'replay at an applied seq');
    const [retry] = await store.applyBatch([{ seq: 10, entry: pruneAt('p-wide', at, { from: 1, to: 9, inactiveDays: 30 }) }]);
    assert.is(retry?.duplicate, true, 'the same opId again is answered from its first result');
    assert.is(store.getFact('email:0000000003:0')?.status, 'active', 'no decay pruning without decayedBelow');

    const bad = await store.applyBatch([
      { seq: 11, entry: pruneAt('bad-1', at, { from: 5, to: 5, inactiveDays: 30 }) },
      { seq: 12, entry: pruneAt('bad-2', at, { from: 1, to: 2 + MAX_PRUNE_SPAN, inactiveDays: 30 }) },
      { seq: 13, entry: pruneAt('bad-3', at, { from: 1, to: 9, inactiveDays: -1 }) },
    ]);
    assert.equal(
      bad.map((r) => [r.status, r.error?.code]),
      [
        ['rejected', 'BAD_REQUEST'],
        ['rejected', 'BAD_REQUEST'],
        ['rejected', 'BAD_REQUEST'],
      ],
    );
    assert.match(bad[1]!.error!.message, /toPosition/);
    assert.is.not(store.digest(), digest, 'rejected entries are recorded (their op results)');
    assert.is(store.stats().lastPosition, 13);
  } finally {
    for (const s of stores) await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
