/**
 * Recall's windows count live facts (review session 12, finding 9; walkthrough session 12, F5): a subject filter
 * looks at its subject's newest facts and a query word at its newest postings, and facts that can never pass the
 * query's filters — superseded, retracted, decayed below the floor — must not fill those windows and hide an older
 * true fact. Real LMDB stores in temp dirs; the reviewers' reproductions, answers compared across replicas (another
 * batching, a reopened store, the reading path of `asOf`), and the bound of the walk past dead facts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openShardStore, type FactInput, type LogEntry, type RecallQuery, type ShardStore } from '../../shards/index.ts';
import { assertEntry, DAY, entry, T0, tempDir } from './helpers.ts';

const HOUR = 3_600_000;
const PREDICATES = {
  prefers_attachment_format: { cardinality: 'one', halfLifeDays: 365 },
  works_in_timezone: { cardinality: 'one', halfLifeDays: 365 },
  attended: { cardinality: 'many', halfLifeDays: 365 },
} as const;
const PDF: FactInput = { text: 'The user prefers PDF attachments over links', subject: 'user', predicate: 'prefers_attachment_format', object: 'pdf', confidence: 0.9 };
const factId = (seq: number): string => `email:${seq.toString(36).padStart(10, '0')}:0`;

type Kind = 'superseded' | 'retracted' | 'forgotten' | 'decayed' | 'mixed';

/** The true fact first, then `n` newer facts of the same subject that are dead by `kind` when recalled. */
function subjectLog(n: number, kind: Kind): LogEntry[] {
  const log: LogEntry[] = [assertEntry(PDF, { recordedAt: T0 })];
  const undo: LogEntry[] = [];
  for (let i = 0; i < n; i++) {
    const at = T0 + (i + 1) * HOUR;
    const k = kind === 'mixed' ? (['superseded', 'retracted', 'forgotten', 'decayed'] as const)[i % 4] : kind;
    if (k === 'superseded') {
      log.push(assertEntry({ text: `user works in zone ${i}`, subject: 'user', predicate: 'works_in_timezone', object: `zone-${i}`, observedAt: at }, { recordedAt: at }));
      continue;
    }
    const halfLifeDays = k === 'decayed' ? 0.01 : undefined;
    log.push(assertEntry({ text: `user attended standup number ${i}`, subject: 'user', predicate: 'attended', object: `standup-${i}`, observedAt: at, ...(halfLifeDays ? { halfLifeDays } : {}) }, { recordedAt: at }));
    if (k === 'retracted' || k === 'forgotten') undo.push(entry({ op: k === 'retracted' ? 'retract' : 'forget', factId: factId(log.length), recordedAt: at + 1 }));
  }
  return [...log, ...undo];
}

async function withStore(log: readonly LogEntry[], body: (store: ShardStore, reopen: () => Promise<ShardStore>) => Promise<void>, batch = 500): Promise<void> {
  const dir = tempDir();
  let store = openShardStore({ path: dir.path, domain: 'email', predicates: PREDICATES, durability: 'none' });
  try {
    for (let i = 0; i < log.length; i += batch) await store.applyBatch(log.slice(i, i + batch).map((entry, k) => ({ seq: i + k + 1, entry })));
    await body(store, async () => {
      await store.close();
      store = openShardStore({ path: dir.path, domain: 'email', predicates: PREDICATES, durability: 'none' });
      return store;
    });
  } finally {
    await store.close();
    dir.remove();
  }
}

const objects = (store: ShardStore, q: RecallQuery): unknown[] => store.recall(q).facts.map((f) => f.object ?? f.text);
const answer = (store: ShardStore, q: RecallQuery): [string, number][] => store.recall(q).facts.map((f) => [f.id, f.score]);

for (const [n, kind] of [[45, 'superseded'], [200, 'superseded'], [45, 'retracted'], [200, 'retracted'], [45, 'decayed'], [200, 'mixed']] as const) {
  test(`finding 9: a subject's true fact is recalled behind ${n} newer ${kind} facts (query, no query, limit 100, asOf, replicas, reopened)`, async () => {
    const log = subjectLog(n, kind);
    const now = T0 + (n + 72) * HOUR;
    const qs: RecallQuery[] = [
      { subject: 'user', query: 'attachment format pdf', now },
      { subject: 'user', now },
      { subject: 'user', now, limit: 100 },
      { subject: 'user', query: 'attachment format pdf', now, asOf: now },
    ];
    let first: [string, number][][] = [];
    await withStore(log, async (store, reopen) => {
      for (const q of qs) {
        assert.ok(objects(store, q).includes('pdf'), `${JSON.stringify(q)}: ${JSON.stringify(objects(store, q))}`);
        assert.is(store.recall(q).partial, undefined, 'the walk did not run out');
      }
      // The text-and-subject query ranks the matching fact first.
      assert.is(objects(store, qs[0]!)[0], 'pdf');
      first = qs.map((q) => answer(store, q));
      const reopened = await reopen();
      assert.equal(qs.map((q) => answer(reopened, q)), first, 'a reopened store (facts from their records) answers the same');
    });
    // A replica that applied the same log in other batches answers the same, ids and scores.
    await withStore(log, async (store) => assert.equal(qs.map((q) => answer(store, q)), first, 'another batching answers the same'), 7);
  });
}

test('finding 9: a minConfidence above the newer facts skips them in the window', async () => {
  const log: LogEntry[] = [assertEntry(PDF, { recordedAt: T0 })];
  for (let i = 0; i < 60; i++) log.push(assertEntry({ text: `user attended standup number ${i}`, subject: 'user', predicate: 'attended', object: `standup-${i}`, confidence: 0.3 }, { recordedAt: T0 + (i + 1) * HOUR }));
  await withStore(log, async (store) => {
    const now = T0 + 3 * DAY;
    assert.equal(objects(store, { subject: 'user', now, minConfidence: 0.5 }), ['pdf']);
    assert.is(objects(store, { subject: 'user', now }).length, 10, 'the newer facts are live without the floor');
  });
});

/** One true note, then `n` newer notes with the word `attachment`, each retracted (or forgotten, every third). */
function textLog(n: number): LogEntry[] {
  const log: LogEntry[] = [assertEntry({ text: 'The user prefers PDF attachments over links' }, { recordedAt: T0 })];
  const undo: LogEntry[] = [];
  for (let i = 0; i < n; i++) {
    const at = T0 + (i + 1) * HOUR;
    log.push(assertEntry({ text: `draft ${i} about the attachment of the report` }, { recordedAt: at }));
    undo.push(entry({ op: i % 3 === 2 ? 'forget' : 'retract', factId: factId(log.length), recordedAt: at + 1 }));
  }
  return [...log, ...undo];
}

for (const n of [100, 200]) {
  test(`finding 9: free text finds the true note behind ${n} newer retracted notes with its word`, async () => {
    const now = T0 + (n + 72) * HOUR;
    const qs: RecallQuery[] = [{ query: 'attachment', now }, { query: 'attachment', now, asOf: now }, { query: 'attachment report', now, limit: 3 }];
    let first: [string, number][][] = [];
    await withStore(textLog(n), async (store, reopen) => {
      for (const q of qs) {
        const texts = objects(store, q);
        assert.equal(texts, ['The user prefers PDF attachments over links'], JSON.stringify(q));
        assert.is(store.recall(q).partial, undefined);
      }
      first = qs.map((q) => answer(store, q));
      const reopened = await reopen();
      assert.equal(qs.map((q) => answer(reopened, q)), first);
    });
    await withStore(textLog(n), async (store) => assert.equal(qs.map((q) => answer(store, q)), first), 11);
  });
}

test('finding 9: the walk past dead facts is bounded, and a result cut by the bound says so (20k dead facts)', async () => {
  // pdf; 20,000 timezone values, each superseding the last; a live fact 300 values from the end; 300 more values.
  const log: LogEntry[] = [assertEntry(PDF, { recordedAt: T0 })];
  const zone = (i: number): LogEntry => assertEntry({ text: `user works in zone ${i}`, subject: 'user', predicate: 'works_in_timezone', object: `zone-${i}`, observedAt: T0 + i * 1000 }, { recordedAt: T0 + i * 1000 });
  for (let i = 1; i <= 20_000; i++) log.push(zone(i));
  log.push(assertEntry({ text: 'user attended the offsite', subject: 'user', predicate: 'attended', object: 'offsite' }, { recordedAt: T0 + 20_000_500 }));
  for (let i = 20_001; i <= 20_300; i++) log.push(zone(i + 1000));
  await withStore(
    log,
    async (store) => {
      const now = T0 + 30 * DAY;
      for (const q of [{ subject: 'user', now }, { subject: 'user', now, asOf: now }] as RecallQuery[]) {
        const r = store.recall(q);
        // Within the budget: the newest value and the live fact 300 back; the pdf, 20,301 back, is past it.
        assert.equal(r.facts.map((f) => String(f.object)).sort(), ['offsite', 'zone-21300'], JSON.stringify(q));
        assert.is(r.partial, true, `says the walk ran out: ${JSON.stringify(q)}`);
      }
      // A query naming the pdf finds it among its words' postings, however far back (§76); the walk still ran out.
      const named = store.recall({ subject: 'user', query: 'attachment pdf', now });
      assert.equal(named.facts.map((f) => String(f.object)).sort(), ['offsite', 'pdf', 'zone-21300']);
      assert.is(named.facts[0]!.object, 'pdf');
      assert.is(named.partial, true);
      // Its own (subject, predicate) list still finds it, and complete.
      const own = store.recall({ subject: 'user', predicate: 'prefers_attachment_format', now });
      assert.equal(own.facts.map((f) => f.object), ['pdf']);
      assert.is(own.partial, undefined);
      // History views are what they were: the newest facts, dead or not.
      assert.is(store.recall({ subject: 'user', now, includeInactive: true, limit: 100 }).facts.length, 64);
    },
    2000,
  );
});

test('finding 9: a read while a batch commits (numbers read from the records) skips the same dead facts', async () => {
  const dir = tempDir();
  // Synced commits keep a batch on lmdb-js's write thread long enough to read in between (read-during-commit.test.ts).
  const store = openShardStore({ path: dir.path, domain: 'email', predicates: PREDICATES, durability: 'meta' });
  const applier = store as unknown as { applier: { state: { appliedSeq: number } } };
  try {
    const subjectPart = subjectLog(200, 'mixed');
    // textLog's retracts and forgets name facts by their place in its own log: after the subject log's here.
    const textPart = textLog(150).map((e) => (e.op === 'retract' || e.op === 'forget' ? { ...e, factId: factId(Number.parseInt(e.factId.split(':')[1]!, 36) + subjectPart.length) } : e));
    const shifted = [...subjectPart, ...textPart];
    await store.applyBatch(shifted.map((entry, i) => ({ seq: i + 1, entry })));
    const now = T0 + 400 * HOUR;
    const qs: RecallQuery[] = [{ subject: 'user', query: 'attachment format pdf', now }, { subject: 'user', now, asOf: now }, { query: 'attachment', now }];
    const reads = (): unknown => qs.map((q) => answer(store, q));
    const before = reads();
    assert.ok(objects(store, qs[0]!).includes('pdf'));
    assert.ok(objects(store, qs[2]!).includes('The user prefers PDF attachments over links'));
    let seq = shifted.length;
    let observed = 0;
    for (let round = 0; round < 5 && observed === 0; round++) {
      const batch = Array.from({ length: 3000 }, (_, i) => ({ seq: ++seq, entry: assertEntry({ text: `bob note ${i}`, subject: 'bob' }, { recordedAt: T0 + seq }) }));
      const pending = store.applyBatch(batch);
      let done = false;
      void pending.then(() => (done = true));
      const during: unknown[] = [];
      while (!done) {
        if (applier.applier.state.appliedSeq > store.appliedSeq) during.push(reads());
        await new Promise((resolve) => setImmediate(resolve));
      }
      await pending;
      const after = reads();
      const json = (x: unknown): string => JSON.stringify(x);
      for (const r of during) assert.ok(json(r) === json(before) || json(r) === json(after), 'a read during the commit answers as before or after it');
      observed += during.length;
    }
    assert.ok(observed > 0, 'a read landed while a batch was committing');
  } finally {
    await store.close();
    dir.remove();
  }
});

test.run();
