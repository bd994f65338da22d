/**
 * Recall at a time t — now, or `asOf` — returns what was believed at t about what is true at t in the world
 * (`shards/world-time.ts`): a plain recall and one `asOf` now agree, a value recorded as superseded by one valid
 * later is returned until then, and a value valid from a later time is not returned before it. Real LMDB stores in
 * temp dirs; the walkthrough's sequences (session 10, finding 3) as they were reproduced.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openShardStore, type LogEntry, type RecallQuery, type ShardStore } from '../../shards/index.ts';
import { assertEntry, DAY, entry, prng, T0, tempDir } from './helpers.ts';

// A long half-life: the 2099 value must not have decayed away by 2099.
const PREDICATES = { works_in_timezone: { cardinality: 'one', halfLifeDays: 365_000 } } as const;
const Y2099 = Date.UTC(2099, 0, 1);
const HOUR = 3_600_000;

async function withStore(body: (store: ShardStore, reopen: () => ShardStore) => Promise<void>): Promise<void> {
  const dir = tempDir();
  const open = () => openShardStore({ path: dir.path, domain: 'calendar', predicates: PREDICATES, durability: 'none' });
  let store = open();
  try {
    await body(store, () => {
      void store.close();
      store = open();
      return store;
    });
  } finally {
    await store.close();
    dir.remove();
  }
}

/** The objects a recall returns, best first. */
function objects(store: ShardStore, q: RecallQuery): unknown[] {
  return store.recall(q).facts.map((f) => f.object);
}

/** Every recall path (subject; subject and predicate; free text; subject with words), plain and `asOf` now. */
function answers(store: ShardStore, subject: string, words: string, now: number): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  const shapes: Record<string, Omit<RecallQuery, 'now'>> = {
    subject: { subject },
    predicate: { subject, predicate: 'works_in_timezone' },
    text: { query: words },
    subjectWords: { subject, query: words },
  };
  for (const [name, shape] of Object.entries(shapes)) {
    out[name] = objects(store, { ...shape, now });
    out[`${name} asOf now`] = objects(store, { ...shape, now, asOf: now });
  }
  return out;
}

function all(value: unknown[]): Record<string, unknown[]> {
  const keys = ['subject', 'predicate', 'text', 'subjectWords'];
  return Object.fromEntries(keys.flatMap((k) => [[k, value], [`${k} asOf now`, value]]));
}

test('finding 3: a value valid from 2099 does not answer now; the value true today does, plainly and asOf now', async () => {
  await withStore(async (store, reopen) => {
    const utc = await store.apply(assertEntry({ text: 'Eve works in UTC', subject: 'eve', predicate: 'works_in_timezone', object: 'UTC', validFrom: Y2099 }, { recordedAt: T0 }), 1);
    assert.is(utc.status, 'created');
    const pst = await store.apply(assertEntry({ text: 'Eve works in PST', subject: 'eve', predicate: 'works_in_timezone', object: 'PST' }, { recordedAt: T0 + 60_000 }), 2);
    assert.is(pst.status, 'recorded_superseded');
    const f = store.getFact(pst.factId!)!;
    assert.is(f.validTo, Y2099, 'PST is true until UTC begins');
    const now = T0 + HOUR;
    // Before: the plain recall answered UTC, asOf now answered nothing.
    assert.equal(answers(store, 'eve', 'eve works', now), all(['PST']));
    assert.equal(answers(store, 'eve', 'eve works', Y2099 + DAY), all(['UTC']));
    // The numbers in memory are filled from the records at open: the same answers.
    store = reopen();
    assert.equal(answers(store, 'eve', 'eve works', now), all(['PST']));
    assert.equal(answers(store, 'eve', 'eve works', Y2099 + DAY), all(['UTC']));
    // asOf before PST was recorded: nothing was believed true then.
    assert.equal(objects(store, { subject: 'eve', now, asOf: T0 + 30_000 }), []);
    // History still holds both, and includeInactive still returns both.
    assert.is(store.history('eve', 'works_in_timezone').length, 2);
    assert.is(store.recall({ subject: 'eve', now, includeInactive: true }).facts.length, 2);
  });
});

test('a scheduled change: the value it supersedes answers until it begins, then it does', async () => {
  await withStore(async (store) => {
    await store.apply(assertEntry({ text: 'Dana works in PST', subject: 'dana', predicate: 'works_in_timezone', object: 'PST' }, { recordedAt: T0 }), 1);
    const cet = await store.apply(assertEntry({ text: 'Dana moves to Berlin and works in CET', subject: 'dana', predicate: 'works_in_timezone', object: 'CET', validFrom: T0 + 10 * DAY }, { recordedAt: T0 + HOUR }), 2);
    assert.is(cet.status, 'superseded_previous');
    assert.equal(answers(store, 'dana', 'dana works', T0 + 2 * HOUR), all(['PST']));
    assert.equal(answers(store, 'dana', 'dana works', T0 + 10 * DAY - 1), all(['PST']));
    assert.equal(answers(store, 'dana', 'dana works', T0 + 10 * DAY), all(['CET']));
    // asOf between the two records: PST was believed and true then.
    assert.equal(objects(store, { subject: 'dana', now: T0 + 20 * DAY, asOf: T0 + HOUR / 2 }), ['PST']);
  });
});

test('a retraction closing a fact at a later time leaves it true until then', async () => {
  await withStore(async (store) => {
    const r = await store.apply(assertEntry({ text: 'Finn is out of office', subject: 'finn', predicate: 'status', object: 'away' }, { recordedAt: T0 }), 1);
    await store.apply(entry({ op: 'retract', factId: r.factId!, validTo: T0 + 5 * DAY, recordedAt: T0 + HOUR }), 2);
    for (const asOf of [undefined, T0 + 2 * HOUR]) {
      assert.is(store.recall({ subject: 'finn', now: T0 + 2 * HOUR, ...(asOf !== undefined && { asOf }) }).facts.length, 1, `asOf ${asOf}`);
    }
    assert.is(store.recall({ subject: 'finn', now: T0 + 5 * DAY }).facts.length, 0);
    assert.is(store.recall({ subject: 'finn', now: T0 + 5 * DAY, asOf: T0 + 5 * DAY }).facts.length, 0);
    // A plain retraction (closed when recorded) leaves at once, as before.
    const s = await store.apply(assertEntry({ text: 'Finn likes tea', subject: 'finn', predicate: 'likes', object: 'tea' }, { recordedAt: T0 }), 3);
    await store.apply(entry({ op: 'retract', factId: s.factId!, recordedAt: T0 + HOUR }), 4);
    assert.equal(objects(store, { subject: 'finn', predicate: 'likes', now: T0 + HOUR }), []);
  });
});

test('a validFrom within the clock skew of recordedAt counts as true at once; the value it replaced is gone at once', async () => {
  await withStore(async (store) => {
    await store.apply(assertEntry({ text: 'Gus works in PST', subject: 'gus', predicate: 'works_in_timezone', object: 'PST' }, { recordedAt: T0 }), 1);
    // An agent's clock a minute ahead of the leader's: observedAt (and so validFrom) a minute after recordedAt.
    const est = await store.apply(assertEntry({ text: 'Gus works in EST', subject: 'gus', predicate: 'works_in_timezone', object: 'EST', observedAt: T0 + HOUR + 60_000 }, { recordedAt: T0 + HOUR }), 2);
    assert.is(est.status, 'superseded_previous');
    assert.equal(answers(store, 'gus', 'gus works', T0 + HOUR), all(['EST']));
  });
});

test('a record of history (a validTo already past when written) is still recalled, plainly and asOf after it was recorded', async () => {
  // review-session10b finding 3: "alice worked at acme from 2015 to 2020", remembered today, was reachable only with
  // includeInactive; an agent asking where alice worked must find it, as before world time applied.
  await withStore(async (store) => {
    const worked = assertEntry(
      { text: 'alice worked at acme', subject: 'alice', predicate: 'worked_at', object: 'acme', validFrom: T0 - 3650 * DAY, validTo: T0 - 1825 * DAY },
      { recordedAt: T0 },
    );
    await store.apply(worked, 1);
    for (const q of [{ query: 'where did alice work' }, { subject: 'alice' }, { subject: 'alice', predicate: 'worked_at' }] as RecallQuery[]) {
      assert.equal(objects(store, { ...q, now: T0 + DAY }), ['acme'], `plain ${JSON.stringify(q)}`);
      assert.equal(objects(store, { ...q, now: T0 + DAY, asOf: T0 + DAY }), ['acme'], `asOf now ${JSON.stringify(q)}`);
      assert.equal(objects(store, { ...q, now: T0 + DAY, asOf: T0 - DAY }), [], `asOf before it was recorded ${JSON.stringify(q)}`);
    }
    // Closed by the shard (a retraction), it leaves recall as any closed fact does.
    const id = store.recall({ subject: 'alice', now: T0 + DAY }).facts[0]!.id;
    await store.apply(entry({ op: 'retract', factId: id, recordedAt: T0 + HOUR }), 2);
    assert.equal(objects(store, { subject: 'alice', now: T0 + DAY }), []);
  });
});

test('recall now and recall asOf now agree on a random store of one-valued facts from the past and the future', async () => {
  await withStore(async (store) => {
    const rnd = prng(42);
    const subjects = ['s0', 's1', 's2', 's3', 's4', 's5'];
    const zones = ['PST', 'EST', 'CET', 'UTC', 'JST', 'IST', 'AEST'];
    const log: { seq: number; entry: LogEntry }[] = [];
    for (let i = 0; i < 600; i++) {
      const subject = subjects[Math.floor(rnd() * subjects.length)]!;
      const zone = zones[Math.floor(rnd() * zones.length)]!;
      // World times from 60 days before to 60 days after the records, in random order; some default to recordedAt.
      const validFrom = rnd() < 0.2 ? undefined : T0 + Math.floor((rnd() - 0.5) * 120 * DAY);
      const r = rnd();
      const e: LogEntry =
        r < 0.9 || i === 0
          ? assertEntry({ text: `${subject} works in ${zone} time`, subject, predicate: 'works_in_timezone', object: zone, ...(validFrom !== undefined && { validFrom }) }, { recordedAt: T0 + i * 1000 })
          : entry({ op: 'retract', factId: `calendar:${(1 + Math.floor(rnd() * i)).toString(36).padStart(10, '0')}:0`, recordedAt: T0 + i * 1000, ...(rnd() < 0.5 && { validTo: T0 + Math.floor(rnd() * 60) * DAY }) });
      log.push({ seq: i + 1, entry: e });
    }
    await store.applyBatch(log);
    const last = T0 + 600 * 1000;
    const times = [last, last + HOUR, ...Array.from({ length: 20 }, () => last + Math.floor(rnd() * 70 * DAY))];
    let answered = 0;
    for (const now of times) {
      for (const subject of subjects) {
        const a = answers(store, subject, `${subject} works time`, now);
        for (const shape of ['subject', 'predicate', 'text', 'subjectWords']) {
          assert.equal(a[shape], a[`${shape} asOf now`], `${subject} ${shape} at +${(now - T0) / DAY} days`);
          answered += a[shape]!.length;
        }
      }
    }
    assert.ok(answered > 0, 'some values are true at those times');
  });
});

test.run();
