/**
 * A `one` (subject, predicate) holds one value at a time in world time, also when it has no active value: a new value
 * then ends the recorded values whose interval runs past its start (a value superseded by a scheduled change that was
 * called off, a retraction "until Dec 4"), and ends where a recorded value valid later begins (review session 12,
 * finding 2). Level 4's rule: entries that say `level: 4` get it; entries without it apply as before, so an old log
 * replays to the old result (decisions §71). Real LMDB stores in temp dirs.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openShardStore, type Fact, type LogEntry, type ShardStore } from '../../shards/index.ts';
import { assertEntry, DAY, entry, T0, tempDir } from './helpers.ts';

const PREDICATES = { works_in_timezone: { cardinality: 'one', halfLifeDays: 365 } } as const;

async function withStores(n: number, body: (stores: ShardStore[]) => Promise<void>): Promise<void> {
  const dirs = Array.from({ length: n }, () => tempDir());
  const stores = dirs.map((d) => openShardStore({ path: d.path, domain: 'calendar', predicates: PREDICATES, durability: 'none' }));
  try {
    await body(stores);
  } finally {
    for (const s of stores) await s.close();
    for (const d of dirs) d.remove();
  }
}

/** An assert of dana's zone as a level-4 leader writes it (`level`), or as an older leader did (`level` undefined). */
function zone(object: string, validFrom: number, recordedAt: number, level: number | undefined): LogEntry {
  const e = assertEntry({ text: `dana works in ${object}`, subject: 'dana', predicate: 'works_in_timezone', object, validFrom }, { recordedAt, source: { agent: 'a1' } });
  return level === undefined ? e : ({ ...e, level } as LogEntry);
}
const retract = (factId: string, recordedAt: number, validTo?: number): LogEntry =>
  entry({ op: 'retract', factId, recordedAt, ...(validTo !== undefined && { validTo }) } as never);
const forget = (factId: string, recordedAt: number): LogEntry => entry({ op: 'forget', factId, recordedAt } as never);

async function play(s: ShardStore, log: LogEntry[]): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < log.length; i++) ids.push((await s.apply(log[i]!, i + 1)).factId ?? '');
  return ids;
}

const zones = (s: ShardStore, at: number, asOf?: number): string[] =>
  s.recall({ subject: 'dana', predicate: 'works_in_timezone', now: at, ...(asOf !== undefined && { asOf }) }).facts.map((f) => String(f.object)).sort();

/** Pairs of values (not forgotten) whose world intervals overlap; a zero-length interval overlaps nothing. */
function overlaps(facts: readonly Fact[]): string[] {
  const live = facts.filter((f) => f.status !== 'forgotten' && (f.validTo ?? Infinity) > f.validFrom);
  const out: string[] = [];
  for (let i = 0; i < live.length; i++) {
    for (let j = i + 1; j < live.length; j++) {
      const a = live[i]!;
      const b = live[j]!;
      if (a.validFrom < (b.validTo ?? Infinity) && b.validFrom < (a.validTo ?? Infinity)) out.push(`${a.object} × ${b.object}`);
    }
  }
  return out;
}

for (const end of ['retract', 'forget'] as const) {
  test(`finding 2 case A (${end}): a scheduled value called off, then a new value: one value, the old one ends where it begins`, async () => {
    await withStores(2, async ([s, old]) => {
      for (const [store, level] of [[s!, 4], [old!, undefined]] as const) {
        const ids = await play(store, [zone('PST', T0, T0, level), zone('CET', T0 + 30 * DAY, T0 + 1000, level)]);
        await store.apply(end === 'retract' ? retract(ids[1]!, T0 + 2000) : forget(ids[1]!, T0 + 2000), 3);
        assert.is((await store.apply(zone('EST', T0 + DAY, T0 + 3000, level), 4)).status, 'created');
      }
      const at = T0 + 2 * DAY;
      assert.equal(zones(s!, at), ['EST'], 'plain recall');
      assert.equal(zones(s!, at, at), ['EST'], 'asOf');
      assert.equal(zones(s!, T0 + DAY / 2), ['PST'], 'before EST began, PST');
      const pst = s!.history('dana', 'works_in_timezone').find((f) => f.object === 'PST')!;
      assert.is(pst.validTo, T0 + DAY, 'PST ends where EST begins');
      assert.equal(overlaps(s!.history('dana', 'works_in_timezone')), []);
      // The same entries without the level replay to what they always gave: both values.
      assert.equal(zones(old!, at), ['EST', 'PST'], 'an old-level log keeps its old result');
    });
  });
}

test('finding 2 case B: a retraction "until Dec 4", then a new value from tomorrow: the newer world-time value wins', async () => {
  await withStores(2, async ([s, old]) => {
    for (const [store, level] of [[s!, 4], [old!, undefined]] as const) {
      const [pst] = await play(store, [zone('PST', T0, T0, level)]);
      assert.is((await store.apply(retract(pst!, T0 + 1000, T0 + 10 * DAY), 2)).status, 'retracted');
      assert.is((await store.apply(zone('EST', T0 + DAY, T0 + 2000, level), 3)).status, 'created');
    }
    const at = T0 + 2 * DAY;
    assert.equal(zones(s!, at), ['EST']);
    assert.equal(zones(s!, at, at), ['EST']);
    const pst = s!.history('dana', 'works_in_timezone').find((f) => f.object === 'PST')!;
    assert.equal([pst.status, pst.validTo], ['retracted', T0 + DAY]);
    assert.equal(zones(old!, at), ['EST', 'PST'], 'an old-level log keeps its old result');
  });
});

test('a new value with no active one ends where a recorded value valid later begins', async () => {
  await withStores(1, async ([s]) => {
    // PST, then CET from +30 d, then DST from +60 d (CET closed then), DST forgotten: no active value, CET still holds
    // from +30 d to +60 d. EST from tomorrow ends where CET begins, and PST where EST begins.
    const ids = await play(s!, [zone('PST', T0, T0, 4), zone('CET', T0 + 30 * DAY, T0 + 1000, 4), zone('DST', T0 + 60 * DAY, T0 + 2000, 4)]);
    await s!.apply(forget(ids[2]!, T0 + 3000), 4);
    assert.is((await s!.apply(zone('EST', T0 + DAY, T0 + 4000, 4), 5)).status, 'created');
    const byObject = Object.fromEntries(s!.history('dana', 'works_in_timezone').filter((f) => f.status !== 'forgotten').map((f) => [f.object, [f.status, f.validFrom, f.validTo]]));
    assert.equal(byObject, {
      PST: ['superseded', T0, T0 + DAY],
      EST: ['active', T0 + DAY, T0 + 30 * DAY],
      CET: ['superseded', T0 + 30 * DAY, T0 + 60 * DAY],
    });
    for (const [at, want] of [[T0 + 2 * DAY, ['EST']], [T0 + 31 * DAY, ['CET']], [T0 + 61 * DAY, []]] as const) {
      assert.equal(zones(s!, at), want, `at +${(at - T0) / DAY} d`);
      assert.equal(zones(s!, at, at), want, `asOf +${(at - T0) / DAY} d`);
    }
  });
});

test('the first value of a pair and a value after a plain retraction of the last one: nothing else changes', async () => {
  await withStores(1, async ([s]) => {
    const [pst] = await play(s!, [zone('PST', T0, T0, 4)]);
    await s!.apply(retract(pst!, T0 + DAY), 2);
    assert.is((await s!.apply(zone('EST', T0 + 2 * DAY, T0 + 2 * DAY, 4), 3)).status, 'created');
    const facts = s!.history('dana', 'works_in_timezone');
    assert.equal(facts.map((f) => [f.object, f.status, f.validTo]), [['PST', 'retracted', T0 + DAY], ['EST', 'active', undefined]]);
  });
});

test('replicas converge: the same level-4 log in one batch, entry by entry and reopened halfway gives one digest', async () => {
  const log: LogEntry[] = [];
  // Several subjects through the cases above, interleaved, with plain entries in between.
  const seqOf = new Map<string, number>();
  let t = T0;
  const push = (e: LogEntry): void => void log.push(e);
  for (const who of ['dana', 'eli', 'fay']) {
    const z = (object: string, from: number): LogEntry =>
      ({ ...assertEntry({ text: `${who} works in ${object}`, subject: who, predicate: 'works_in_timezone', object, validFrom: from }, { recordedAt: (t += 1000), source: { agent: who } }), level: 4 }) as LogEntry;
    push(z('PST', T0));
    seqOf.set(`${who}/CET`, log.length + 1);
    push(z('CET', T0 + 30 * DAY));
    seqOf.set(`${who}/UTC`, log.length + 1);
    push(z('UTC', T0 + 45 * DAY));
  }
  const factId = (seq: number): string => `calendar:${seq.toString(36).padStart(10, '0')}:0`;
  for (const who of ['dana', 'eli', 'fay']) push(retract(factId(seqOf.get(`${who}/UTC`)!), (t += 1000), T0 + 50 * DAY));
  for (const who of ['dana', 'eli', 'fay']) push(forget(factId(seqOf.get(`${who}/CET`)!), (t += 1000)));
  for (const who of ['dana', 'eli', 'fay']) {
    push({ ...assertEntry({ text: `${who} works in EST`, subject: who, predicate: 'works_in_timezone', object: 'EST', validFrom: T0 + 2 * DAY }, { recordedAt: (t += 1000) }), level: 4 } as LogEntry);
  }
  const seqd = log.map((e, i) => ({ seq: i + 1, entry: e }));
  const dirs = [tempDir(), tempDir()];
  const open = (i: number) => openShardStore({ path: dirs[i]!.path, domain: 'calendar', predicates: PREDICATES, durability: 'none' });
  try {
    const a = open(0);
    await a.applyBatch(seqd);
    let b = open(1);
    const half = Math.floor(seqd.length / 2);
    for (const m of seqd.slice(0, half)) await b.applyBatch([m]);
    await b.close();
    b = open(1);
    for (const m of seqd.slice(half)) await b.applyBatch([m]);
    assert.is(a.digest(), b.digest());
    for (const who of ['dana', 'eli', 'fay']) assert.equal(overlaps(a.history(who, 'works_in_timezone')), [], who);
    await a.close();
    await b.close();
  } finally {
    for (const d of dirs) d.remove();
  }
});

test.run();
