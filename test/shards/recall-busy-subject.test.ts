/**
 * A busy subject's older facts are found by a query that names them (walkthrough session 12, F5's other half;
 * decisions §76): a subject-filtered recall takes its subject's newest live facts as candidates, and the user of a
 * personal assistant holds hundreds, so "The user never takes meetings before 10" was invisible to `{subject: "user",
 * query: "meetings before 10"}` once 64 newer live facts about the user existed. Now the query words' postings of the
 * subject's facts join the window. Real LMDB stores in temp dirs: the answer on the loading store, a reopened one (its
 * subjects filed from the records), a replica that applied the log in batches of 7 and the record path of `asOf`;
 * `partial` set exactly when a bound left postings out.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openShardStore, type FactInput, type LogEntry, type RecallQuery, type RecallResult, type ShardStore } from '../../shards/index.ts';
import { assertEntry, T0, tempDir } from './helpers.ts';

const HOUR = 3_600_000;
const PREDICATES = {
  schedule_rule: { cardinality: 'many', halfLifeDays: 365 },
  likes: { cardinality: 'many', halfLifeDays: 365 },
  attended: { cardinality: 'many', halfLifeDays: 365 },
} as const;
const RULE: FactInput = { text: 'The user never takes meetings before 10', subject: 'user', predicate: 'schedule_rule', object: 'no-meetings-before-10', confidence: 0.9 };
const NOW = T0 + 400 * HOUR;

/** The rule first, then `n` newer live facts about the user on other predicates, none with a word of the query. */
function busyLog(n: number): LogEntry[] {
  const log: LogEntry[] = [assertEntry(RULE, { recordedAt: T0 })];
  for (let i = 0; i < n; i++) {
    const at = T0 + (i + 1) * HOUR;
    const [predicate, text] = i % 2 === 0 ? ['likes', `user likes dish number ${i}`] : ['attended', `user attended standup ${i}`];
    log.push(assertEntry({ text, subject: 'user', predicate, object: `thing-${i}`, observedAt: at }, { recordedAt: at }));
  }
  return log;
}

async function withStore(log: readonly LogEntry[], body: (store: ShardStore, reopen: () => Promise<ShardStore>) => Promise<void>, batch = 500): Promise<void> {
  const dir = tempDir();
  const open = (): ShardStore => openShardStore({ path: dir.path, domain: 'personal', predicates: PREDICATES, durability: 'none' });
  let store = open();
  try {
    for (let i = 0; i < log.length; i += batch) await store.applyBatch(log.slice(i, i + batch).map((entry, k) => ({ seq: i + k + 1, entry })));
    await body(store, async () => {
      await store.close();
      store = open();
      return store;
    });
  } finally {
    await store.close();
    dir.remove();
  }
}

const objects = (r: RecallResult): unknown[] => r.facts.map((f) => f.object ?? f.text);
const answer = (r: RecallResult): [string, number][] => r.facts.map((f) => [f.id, f.score]);

test('F5: an old fact of a subject with 300 newer live facts is recalled by a query naming it (reopened, replica, asOf)', async () => {
  const log = busyLog(300);
  const qs: RecallQuery[] = [
    { subject: 'user', query: 'meetings before 10', now: NOW },
    { subject: 'user', query: 'meetings', now: NOW, limit: 3 },
    { subject: 'user', query: 'meetings before 10', now: NOW, limit: 100 },
    { subject: 'user', query: 'meetings before 10', now: NOW, asOf: NOW },
    { subject: 'user', predicate: 'schedule_rule', query: 'meetings', now: NOW },
  ];
  let first: [string, number][][] = [];
  await withStore(log, async (store, reopen) => {
    for (const q of qs) {
      const r = store.recall(q);
      assert.is(objects(r)[0], 'no-meetings-before-10', JSON.stringify(q));
      // Every word's postings were looked at (each word is in one fact): nothing was cut.
      assert.is(r.partial, undefined, JSON.stringify(q));
    }
    // Without a query the window is the newest facts, as before.
    const plain = store.recall({ subject: 'user', now: NOW });
    assert.not.ok(objects(plain).includes('no-meetings-before-10'));
    assert.equal(objects(plain).slice(0, 2), ['thing-299', 'thing-298']);
    assert.is(plain.partial, undefined);
    first = qs.map((q) => answer(store.recall(q)));
    const reopened = await reopen();
    assert.equal(qs.map((q) => answer(reopened.recall(q))), first, 'a reopened store files the subjects from the records');
  });
  await withStore(log, async (store) => assert.equal(qs.map((q) => answer(store.recall(q))), first, 'a replica batching by 7'), 7);
});

test('F5: a mention of another subject, a dead one, or one too new for asOf is not taken', async () => {
  const log = busyLog(300);
  // Another subject's fact with the query's words, newer than the rule; the rule retracted-and-restated is not here.
  log.push(assertEntry({ text: 'Bob never takes meetings before 10', subject: 'bob', predicate: 'schedule_rule', object: 'bob-rule' }, { recordedAt: T0 + 350 * HOUR }));
  await withStore(log, async (store) => {
    const r = store.recall({ subject: 'user', query: 'meetings before 10', now: NOW });
    assert.ok(objects(r).includes('no-meetings-before-10'));
    assert.not.ok(objects(r).includes('bob-rule'));
    assert.ok(r.facts.every((f) => f.subject === 'user'));
    // Before the rule was recorded it is not known.
    const before = store.recall({ subject: 'user', query: 'meetings before 10', now: NOW, asOf: T0 - 1 });
    assert.equal(before.facts, []);
  });
  // Retracted: not recalled, though its words are.
  const retracted = busyLog(300);
  retracted.push({ v: 1, op: 'retract', opId: 'retract-rule', recordedAt: T0 + 301 * HOUR, source: { agent: 'agent-a' }, factId: 'personal:0000000001:0' } as LogEntry);
  await withStore(retracted, async (store) => {
    const r = store.recall({ subject: 'user', query: 'meetings before 10', now: NOW });
    assert.not.ok(objects(r).includes('no-meetings-before-10'), JSON.stringify(objects(r)));
  });
});

test('F5: partial is set only when a query word had postings older than those looked at', async () => {
  // 120 newer notes of other subjects say "meetings": the user's rule, holding "meetings" alone, is past the word's
  // newest 96 postings — cut, and said so. "before 10" names it by rarer words: found, not cut.
  const log = busyLog(300);
  for (let i = 0; i < 120; i++) {
    const at = T0 + (301 + i) * HOUR;
    log.push(assertEntry({ text: `meetings note ${i}`, subject: `person-${i}`, predicate: 'likes', object: `note-${i}` }, { recordedAt: at }));
  }
  await withStore(log, async (store) => {
    const cut = store.recall({ subject: 'user', query: 'meetings', now: NOW + 200 * HOUR });
    assert.not.ok(objects(cut).includes('no-meetings-before-10'));
    assert.is(cut.partial, true);
    const named = store.recall({ subject: 'user', query: 'never takes', now: NOW + 200 * HOUR });
    assert.is(objects(named)[0], 'no-meetings-before-10');
    assert.is(named.partial, undefined);
    // A subject whose list fits its window looks at no postings: nothing cut, whatever the words.
    const small = store.recall({ subject: 'person-3', query: 'meetings', now: NOW + 200 * HOUR });
    assert.equal(objects(small), ['note-3']);
    assert.is(small.partial, undefined);
  });
});

test('F5: the mentions taken are bounded by the fetch cap, best relevance first', async () => {
  // 90 old facts of the user holding "meetings", then 300 newer ones without: limit 10 scores the window and the 40
  // most relevant mentions, so the one whose text is the word alone (highest BM25), not among the newest 40, wins.
  const log: LogEntry[] = [];
  for (let i = 0; i < 90; i++) {
    const text = i === 42 ? 'meetings' : `meetings with a long tail of words number ${i} here`;
    log.push(assertEntry({ text, subject: 'user', predicate: 'schedule_rule', object: `m-${i}` }, { recordedAt: T0 + i }));
  }
  for (const e of busyLog(300).slice(1)) log.push(e);
  await withStore(log, async (store) => {
    const r = store.recall({ subject: 'user', query: 'meetings', now: NOW, limit: 10 });
    assert.is(r.facts.length, 10);
    assert.is(r.facts[0]!.object, 'm-42');
    assert.ok(r.facts.every((f) => String(f.object).startsWith('m-')));
    assert.is(r.partial, undefined);
  });
});

test('F5: a subject and a predicate both busy: the predicate\'s older fact is found, other predicates\' mentions are not taken', async () => {
  const log: LogEntry[] = [assertEntry(RULE, { recordedAt: T0 })];
  // 60 newer rules (the pair's list passes its window of 40) and 60 facts of another predicate saying "meetings".
  for (let i = 0; i < 60; i++) {
    const at = T0 + (i + 1) * HOUR;
    log.push(assertEntry({ text: `user rule ${i} about lunch`, subject: 'user', predicate: 'schedule_rule', object: `rule-${i}` }, { recordedAt: at }));
    log.push(assertEntry({ text: `user likes meetings story ${i}`, subject: 'user', predicate: 'likes', object: `story-${i}` }, { recordedAt: at + 1 }));
  }
  await withStore(log, async (store) => {
    const r = store.recall({ subject: 'user', predicate: 'schedule_rule', query: 'meetings', now: NOW });
    assert.is(objects(r)[0], 'no-meetings-before-10');
    assert.ok(r.facts.every((f) => f.predicate === 'schedule_rule'));
    assert.is(r.partial, undefined, '"meetings" has 61 postings, all looked at');
  });
});

test('F5: a word\'s newer mentions in a newer segment count toward its 96 without being walked: found within them, cut past them', async () => {
  // The user's rule and 300 facts in the first index segment; then, from sequence 70,000 (the next segment, open),
  // `newer` notes of other people saying "meetings". The rule is the word's (newer + 1)-th newest mention.
  for (const [newer, found] of [[50, true], [95, true], [96, false], [120, false]] as const) {
    const dir = tempDir();
    const store = openShardStore({ path: dir.path, domain: 'personal', predicates: PREDICATES, durability: 'none' });
    try {
      const log = busyLog(300);
      await store.applyBatch(log.map((entry, k) => ({ seq: k + 1, entry })));
      const notes = Array.from({ length: newer }, (_, i) => ({
        seq: 70_000 + i,
        entry: assertEntry({ text: `meetings note ${i}`, subject: `person-${i}`, predicate: 'likes', object: `note-${i}` }, { recordedAt: T0 + (301 + i) * HOUR }),
      }));
      await store.applyBatch(notes);
      for (const reopened of [false, true]) {
        const s = reopened ? openShardStore({ path: dir.path, domain: 'personal', predicates: PREDICATES, durability: 'none' }) : store;
        if (reopened) await store.close();
        try {
          const r = s.recall({ subject: 'user', query: 'meetings', now: NOW + 200 * HOUR });
          assert.is(objects(r).includes('no-meetings-before-10'), found, `${newer} newer mentions, reopened ${reopened}`);
          // "meetings" has more than 96 mentions from 96 newer on: the rest were not looked at.
          assert.is(r.partial, newer + 1 > 96 ? true : undefined, `${newer} newer mentions`);
        } finally {
          if (reopened) await s.close();
        }
      }
    } finally {
      await store.close();
      dir.remove();
    }
  }
});

test.run();
