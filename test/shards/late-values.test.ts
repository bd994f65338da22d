/**
 * A `one` predicate's values never overlap in world time, whatever order they reach the log in: a value that arrives
 * late (older than the standing one) ends where the next recorded value begins, and a superseded value before it
 * ends where it begins (`conflict.ts` `placeLateValue`). Real LMDB stores in temp dirs; the walkthrough's sequence
 * (session 10, finding 4) as it was reproduced.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openShardStore, type Fact, type LogEntry, type ShardStore } from '../../shards/index.ts';
import { assertEntry, DAY, prng, T0, tempDir } from './helpers.ts';

const PREDICATES = { works_in_timezone: { cardinality: 'one', halfLifeDays: 365 } } as const;
const NOV = (day: number): number => Date.UTC(2026, 10, day);
const OCT = (day: number): number => Date.UTC(2026, 9, day);

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

const zone = (subject: string, object: string, validFrom: number, recordedAt: number, agent = 'a1'): LogEntry =>
  assertEntry({ text: `${subject} works in ${object}`, subject, predicate: 'works_in_timezone', object, validFrom }, { recordedAt, source: { agent } });

/** The world intervals of the (subject, predicate)'s values that were not retracted, by object. */
function intervals(store: ShardStore, subject: string): Record<string, [number, number | undefined]> {
  const out: Record<string, [number, number | undefined]> = {};
  for (const f of store.history(subject, 'works_in_timezone')) if (f.status !== 'retracted') out[f.object as string] = [f.validFrom, f.validTo];
  return out;
}

/** Pairs of the values whose world intervals overlap (a zero-length interval overlaps nothing). */
function overlaps(facts: readonly Fact[]): string[] {
  const live = facts.filter((f) => (f.status === 'active' || f.status === 'superseded') && (f.validTo ?? Infinity) > f.validFrom);
  const out: string[] = [];
  for (let i = 0; i < live.length; i++) {
    for (let j = i + 1; j < live.length; j++) {
      const a = live[i]!;
      const b = live[j]!;
      if (a.validFrom < (b.validTo ?? Infinity) && b.validFrom < (a.validTo ?? Infinity)) out.push(`${a.object} [${a.validFrom}, ${a.validTo}) × ${b.object} [${b.validFrom}, ${b.validTo})`);
    }
  }
  return out;
}

test("finding 4: a late value ends where the next known value begins (EST from Oct 1 ends Nov 1, not Nov 20)", async () => {
  await withStores(1, async ([store]) => {
    const s = store!;
    assert.is((await s.apply(zone('dana', 'PST', NOV(1), T0, 'a1'), 1)).status, 'created');
    assert.is((await s.apply(zone('dana', 'CET', NOV(20), T0 + 1000, 'a2'), 2)).status, 'superseded_previous');
    assert.is((await s.apply(zone('dana', 'EST', OCT(1), T0 + 2000, 'a3'), 3)).status, 'recorded_superseded');
    // Before: EST [Oct 1, Nov 20), overlapping PST [Nov 1, Nov 20).
    assert.equal(intervals(s, 'dana'), { EST: [OCT(1), NOV(1)], PST: [NOV(1), NOV(20)], CET: [NOV(20), undefined] });
    assert.equal(overlaps(s.history('dana', 'works_in_timezone')), []);
    assert.equal(s.recall({ subject: 'dana', now: T0 + DAY }).facts.map((f) => f.object), ['CET']);
  });
});

test('a late value between two recorded ones: it ends at the next, and the one before it ends where it begins', async () => {
  await withStores(1, async ([store]) => {
    const s = store!;
    await s.apply(zone('eli', 'PST', NOV(1), T0), 1);
    // A scheduled move, recorded before it happens: PST is true until Dec 1.
    assert.is((await s.apply(zone('eli', 'CET', NOV(1) + 30 * DAY, T0 + 1000), 2)).status, 'superseded_previous');
    // Then the news that Eli worked Eastern time from Nov 27 (after the records), arriving late.
    const est = await s.apply(zone('eli', 'EST', T0 + 3 * DAY, T0 + 2000), 3);
    assert.is(est.status, 'recorded_superseded');
    assert.equal(intervals(s, 'eli'), { PST: [NOV(1), T0 + 3 * DAY], EST: [T0 + 3 * DAY, NOV(1) + 30 * DAY], CET: [NOV(1) + 30 * DAY, undefined] });
    const objects = (now: number, asOf?: number) => s.recall({ subject: 'eli', now, ...(asOf !== undefined && { asOf }) }).facts.map((f) => f.object);
    // One value at every time, plainly and asOf: before, PST and EST were both true from Nov 27 to Dec 1.
    for (const [now, value] of [[T0 + DAY, 'PST'], [T0 + 4 * DAY, 'EST'], [NOV(1) + 31 * DAY, 'CET']] as const) {
      assert.equal(objects(now), [value], `at ${new Date(now).toISOString()}`);
      assert.equal(objects(now, now), [value], `asOf ${new Date(now).toISOString()}`);
    }
  });
});

test('random arrival order: no two values of a one predicate overlap, one value is true at a time, replicas converge', async () => {
  await withStores(2, async ([a, b]) => {
    const rnd = prng(9);
    const subjects = ['s0', 's1', 's2', 's3'];
    const log: { seq: number; entry: LogEntry }[] = [];
    for (let i = 0; i < 800; i++) {
      const subject = subjects[Math.floor(rnd() * subjects.length)]!;
      // Distinct values (no reinforcement), world times 90 days either side of the records, some recorded in the same
      // millisecond (then the source breaks ties).
      const validFrom = T0 + Math.floor((rnd() - 0.5) * 180) * DAY;
      const recordedAt = T0 + Math.floor(i / 2) * 1000;
      log.push({ seq: i + 1, entry: zone(subject, `Z${i}`, validFrom, recordedAt, `agent-${Math.floor(rnd() * 3)}`) });
    }
    for (let i = 0; i < log.length; i += 100) await a!.applyBatch(log.slice(i, i + 100));
    for (let i = 0; i < log.length; i += 7) await b!.applyBatch(log.slice(i, i + 7));
    assert.is(a!.digest(), b!.digest());
    const last = T0 + 400 * 1000;
    for (const subject of subjects) {
      assert.equal(overlaps(a!.history(subject, 'works_in_timezone')), [], subject);
      for (let k = 0; k < 12; k++) {
        const now = last + Math.floor(rnd() * 90) * DAY;
        const plain = a!.recall({ subject, now, minConfidence: 1e-9 }).facts.map((f) => f.id);
        assert.ok(plain.length <= 1, `${subject} at +${(now - T0) / DAY} days: ${plain.join(', ')}`);
        assert.equal(a!.recall({ subject, now, asOf: now, minConfidence: 1e-9 }).facts.map((f) => f.id), plain);
      }
    }
  });
});

test.run();
