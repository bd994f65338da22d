/**
 * Replicas converge whatever each host's config says: an assert written at log level 3 carries the leader's resolved
 * predicate spec (`cardinality`, and the half-life filled in), and apply decides with it rather than with the store's
 * own `predicates`. Two stores opened with different specs for the same predicate apply one such log to the same
 * statuses, answers and digest; entries without the field still apply by the store's own specs, as before level 3.
 * A store that reopens rebuilds its `one`-value index by the log's cardinalities, not its options, and a log whose
 * cardinality for a predicate changes (a leader with another config) gives the same state whether a replica applied
 * it in one batch, message by message, or reopening between messages.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { PredicateSpecs } from '../../actors/index.ts';
import { openShardStore, validateEntry, ShardValidationError, type AssertEntry, type LogEntry, type LogMessage, type PredicateSpec, type ShardStore, type ShardStoreOptions } from '../../shards/index.ts';
import { assertEntry, DAY, prng, T0, tempDir } from './helpers.ts';

const ONE: PredicateSpec = { cardinality: 'one', halfLifeDays: 10 };
const MANY: PredicateSpec = { cardinality: 'many', halfLifeDays: 90 };

/** The writes of the reviewer's reproduction, and a fact without a predicate (its half-life comes from the default). */
function writes(): AssertEntry[] {
  return [
    assertEntry({ text: 'the user prefers links', subject: 'user', predicate: 'prefers_format', object: 'link', observedAt: T0 }, { recordedAt: T0 }),
    assertEntry({ text: 'the user prefers pdf attachments', subject: 'user', predicate: 'prefers_format', object: 'pdf', observedAt: T0 + DAY }, { recordedAt: T0 + DAY }),
    assertEntry({ text: 'the user prefers zip files', subject: 'user', predicate: 'prefers_format', object: 'zip', observedAt: T0 + 2 * DAY, halfLifeDays: 3 }, { recordedAt: T0 + 2 * DAY }),
    assertEntry({ text: 'lunch with dana on friday', observedAt: T0 + 3 * DAY }, { recordedAt: T0 + 3 * DAY }),
  ] as AssertEntry[];
}

async function withStores(run: (a: ShardStore, b: ShardStore) => Promise<void>): Promise<void> {
  const dir = tempDir();
  // The two hosts' configs disagree on the predicate and on the default.
  const a = openShardStore({ path: join(dir.path, 'a'), domain: 'email', predicates: { prefers_format: ONE }, defaultPredicate: { cardinality: 'many', halfLifeDays: 30 }, durability: 'none' });
  const b = openShardStore({ path: join(dir.path, 'b'), domain: 'email', predicates: { prefers_format: MANY }, defaultPredicate: { cardinality: 'one', halfLifeDays: 7 }, durability: 'none' });
  try {
    await run(a, b);
  } finally {
    await a.close();
    await b.close();
    dir.remove();
  }
}

function answers(store: ShardStore): unknown {
  const now = T0 + 4 * DAY;
  return {
    bySubject: store.recall({ subject: 'user', now }).facts.map((f) => [f.object, f.status, f.halfLifeDays, f.effectiveConfidence]),
    byText: store.recall({ query: 'lunch dana', now }).facts.map((f) => [f.text, f.halfLifeDays]),
    history: store.history('user', 'prefers_format').map((f) => [f.object, f.status, f.validTo ?? null]),
  };
}

test('a level-3 log (specs resolved by the leader) gives the same statuses, answers and digest on stores configured differently', async () => {
  // The leader's config is store a's: `one`, half-life 10, default half-life 30.
  const leader = new PredicateSpecs({ prefers_format: ONE }, { cardinality: 'many', halfLifeDays: 30 });
  const log = writes().map((e) => leader.resolve(e));
  assert.is(log[0]!.cardinality, 'one');
  assert.is(log[0]!.fact.halfLifeDays, 10, 'the half-life is filled in when the request left it out');
  assert.is(log[2]!.fact.halfLifeDays, 3, "the request's own half-life is kept");
  assert.is(log[3]!.cardinality, undefined, 'no cardinality for a fact without a predicate');
  assert.is(log[3]!.fact.halfLifeDays, 30, "but the default's half-life");
  await withStores(async (a, b) => {
    const batch = log.map((entry, i) => ({ seq: i + 1, entry }));
    const ra = await a.applyBatch(batch);
    const rb = await b.applyBatch(batch);
    assert.equal(ra.map((r) => r.status), ['created', 'superseded_previous', 'superseded_previous', 'created']);
    assert.equal(rb, ra, 'the same results on both');
    assert.equal(answers(b), answers(a), 'the same answers on both');
    assert.is(b.digest(), a.digest(), 'the same digest on both');
  });
});

test('entries without a resolved spec (written below level 3) still apply by each store\'s own config', async () => {
  await withStores(async (a, b) => {
    const batch = writes().map((entry, i) => ({ seq: i + 1, entry: entry as LogEntry }));
    const ra = await a.applyBatch(batch);
    const rb = await b.applyBatch(batch);
    assert.equal(ra.map((r) => r.status), ['created', 'superseded_previous', 'superseded_previous', 'created'], 'a: one');
    assert.equal(rb.map((r) => r.status), ['created', 'created', 'created', 'created'], 'b: many (the divergence level 3 removes)');
    assert.is.not(b.digest(), a.digest());
  });
});

test('a resolved cardinality overrides the store\'s spec both ways, and a bad one is rejected', async () => {
  await withStores(async (a, b) => {
    // The leader says `many` for a predicate store a has as `one`.
    const leader = new PredicateSpecs({ prefers_format: MANY }, undefined);
    const batch = writes().map((e, i) => ({ seq: i + 1, entry: leader.resolve(e) as LogEntry }));
    const ra = await a.applyBatch(batch);
    assert.equal(ra.map((r) => r.status), ['created', 'created', 'created', 'created']);
    assert.equal(await b.applyBatch(batch), ra);
    assert.is(b.digest(), a.digest());
  });
  const bad = { ...writes()[0]!, cardinality: 'several' };
  assert.throws(() => validateEntry(bad), (e: unknown) => e instanceof ShardValidationError && /cardinality/.test((e as Error).message));
});

test('a store that reopens rebuilds its one-value index by the log, not by its options', async () => {
  const dir = tempDir();
  const options = (name: string, prefers: PredicateSpec): ShardStoreOptions => ({ path: join(dir.path, name), domain: 'email', predicates: { prefers_format: prefers }, durability: 'none' });
  const leader = new PredicateSpecs({ prefers_format: ONE }, undefined);
  const log = writes().map((e, i) => ({ seq: i + 1, entry: leader.resolve(e) as LogEntry }));
  let a = openShardStore(options('a', ONE));
  let b = openShardStore(options('b', MANY));
  try {
    await a.applyBatch(log.slice(0, 2));
    await b.applyBatch(log.slice(0, 2));
    // b restarts (its config says many); the leader's next value must still close pdf on b.
    await b.close();
    b = openShardStore(options('b', MANY));
    const ra = await a.applyBatch(log.slice(2));
    const rb = await b.applyBatch(log.slice(2));
    assert.is(rb[0]!.status, 'superseded_previous');
    assert.equal(rb, ra);
    assert.is(b.digest(), a.digest());
    assert.equal(answers(b), answers(a));
  } finally {
    await a.close();
    await b.close();
    dir.remove();
  }
});

/**
 * A log whose leaders disagreed: runs of asserts stamped `many`, then `one`, then `many`, then `one` again (each run
 * from a leader with another config), with retracts between, on a few subjects so values pile up and get superseded.
 */
function flippingLog(seed: number): { seq: number; entry: LogMessage }[] {
  const rnd = prng(seed);
  const runs: PredicateSpec[] = [MANY, ONE, MANY, ONE, ONE, MANY, ONE];
  const out: { seq: number; entry: LogMessage }[] = [];
  let seq = 0;
  let i = 0;
  for (const spec of runs) {
    const leader = new PredicateSpecs({ prefers_format: spec }, undefined);
    const n = 4 + Math.floor(rnd() * 6);
    for (let k = 0; k < n; k++, i++) {
      const subject = `u${Math.floor(rnd() * 3)}`;
      const object = ['pdf', 'link', 'zip', 'doc', 'txt'][Math.floor(rnd() * 5)]!;
      const at = T0 + i * DAY;
      const assertOne = (o: string, opId: string): LogEntry =>
        leader.resolve(assertEntry({ text: `${subject} prefers ${o}`, subject, predicate: 'prefers_format', object: o, observedAt: at }, { recordedAt: at, opId }) as AssertEntry);
      if (rnd() < 0.1 && seq > 2) {
        out.push({ seq: ++seq, entry: { v: 1, op: 'retract', opId: `r-${seed}-${i}`, recordedAt: at, source: { agent: 'a' }, factId: `email:${Math.floor(rnd() * seq).toString(36).padStart(10, '0')}:0` } });
      } else if (rnd() < 0.25) {
        // A group: two values in one message (the transition may be inside it).
        out.push({ seq: ++seq, entry: { v: 1, op: 'batch', opId: `g-${seed}-${i}`, recordedAt: at, entries: [assertOne(object, `g1-${seed}-${i}`), assertOne(`${object}2`, `g2-${seed}-${i}`)] } });
      } else out.push({ seq: ++seq, entry: assertOne(object, `a-${seed}-${i}`) });
    }
  }
  return out;
}

test('a log whose cardinality flips gives one state: in one batch, message by message, or reopening between messages', async () => {
  for (const seed of [1, 2, 3]) {
    const dir = tempDir();
    const options = (name: string, prefers: PredicateSpec): ShardStoreOptions => ({ path: join(dir.path, name), domain: 'email', predicates: { prefers_format: prefers }, durability: 'none' });
    const log = flippingLog(seed);
    const whole = openShardStore(options('whole', ONE));
    const steps = openShardStore(options('steps', MANY));
    let reopened = openShardStore(options('reopened', ONE));
    try {
      const r1 = await whole.applyBatch(log);
      const r2: unknown[] = [];
      const r3: unknown[] = [];
      for (const m of log) {
        r2.push(...(await steps.applyBatch([m])));
        r3.push(...(await reopened.applyBatch([m])));
        await reopened.close();
        reopened = openShardStore(options('reopened', seed % 2 === 0 ? ONE : MANY));
      }
      assert.ok(r1.some((r) => r.status === 'superseded_previous') && r1.filter((r) => r.status === 'created').length > 7, `seed ${seed}: both cardinalities at work`);
      assert.equal(r2, r1, `seed ${seed}: message by message`);
      assert.equal(r3, r1, `seed ${seed}: reopening between messages`);
      assert.is(steps.digest(), whole.digest(), `seed ${seed}`);
      assert.is(reopened.digest(), whole.digest(), `seed ${seed}`);
      const now = T0 + 100 * DAY;
      for (const subject of ['u0', 'u1', 'u2']) {
        const q = { subject, now, limit: 50 };
        assert.equal(steps.recall(q), whole.recall(q));
        assert.equal(reopened.recall(q), whole.recall(q));
      }
    } finally {
      await whole.close();
      await steps.close();
      await reopened.close();
      dir.remove();
    }
  }
});

test('unstamped asserts after the log stamped the predicate: a store reopened between them ends as one never closed', async () => {
  // review-session10b finding 1: apply decided unstamped asserts by the options while the one-value index follows the
  // log's record, so a reopen (which rebuilds the index by the record) changed what came next. Both directions.
  const fmt = (object: string, day: number, cardinality?: 'one' | 'many'): LogEntry => {
    const e = assertEntry({ text: `the user prefers ${object}`, subject: 'user', predicate: 'prefers_format', object, observedAt: T0 + day * DAY }, { recordedAt: T0 + day * DAY }) as AssertEntry;
    return cardinality === undefined ? e : { ...e, cardinality };
  };
  const cases: [PredicateSpec, LogEntry[]][] = [
    [MANY, [fmt('link', 0, 'one'), fmt('pdf', 1), fmt('zip', 2, 'one'), fmt('tar', 3, 'one')]],
    [ONE, [fmt('link', 0, 'many'), fmt('pdf', 1), fmt('zip', 2), fmt('tar', 3, 'one')]],
  ];
  for (const [spec, log] of cases) {
    const dir = tempDir();
    const options = (name: string): ShardStoreOptions => ({ path: join(dir.path, name), domain: 'email', predicates: { prefers_format: spec }, durability: 'none' });
    const never = openShardStore(options('never'));
    let reopened = openShardStore(options('reopened'));
    try {
      const results: string[][] = [[], []];
      for (let i = 0; i < log.length; i++) {
        results[0]!.push(...(await never.applyBatch([{ seq: i + 1, entry: log[i]! }])).map((r) => r.status));
        if (i === 2) {
          await reopened.close();
          reopened = openShardStore(options('reopened'));
        }
        results[1]!.push(...(await reopened.applyBatch([{ seq: i + 1, entry: log[i]! }])).map((r) => r.status));
      }
      assert.equal(results[1], results[0], `statuses (${spec.cardinality} configured)`);
      assert.is(reopened.digest(), never.digest(), `digest (${spec.cardinality} configured)`);
      // The unstamped pdf followed the log's word on the predicate, not the options.
      assert.is(results[0]![1], log[0]!.op === 'assert' && log[0]!.cardinality === 'one' ? 'superseded_previous' : 'created');
    } finally {
      await never.close();
      await reopened.close();
      dir.remove();
    }
  }
});

test.run();
