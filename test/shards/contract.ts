/**
 * Behaviour every `ShardStore` must have, as one suite run against each implementation
 * (`shardStoreContract('lmdb', (path) => openShardStore({...}))`).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { LogMessage, ShardStore, ShardStoreOptions } from '../../shards/index.ts';
import { assertEntry, DAY, entry, T0, tempDir } from './helpers.ts';

export type OpenStore = (options: Omit<ShardStoreOptions, 'path'> & { path: string }) => ShardStore;

const PREDICATES = {
  prefers_format: { cardinality: 'one', halfLifeDays: 30 },
  works_with: { cardinality: 'many', halfLifeDays: 30 },
  lives_in: { cardinality: 'one', halfLifeDays: 365 },
} as const;

export function shardStoreContract(name: string, open: OpenStore): void {
  const test = suite<{ store: ShardStore; dir: { path: string; remove(): void }; seq: number }>(`ShardStore contract (${name})`);

  test.before.each((ctx) => {
    ctx.dir = tempDir();
    ctx.store = open({ path: ctx.dir.path, domain: 'email', predicates: PREDICATES, durability: 'none' });
    ctx.seq = 0;
  });
  test.after.each(async (ctx) => {
    await ctx.store.close();
    ctx.dir.remove();
  });

  test('the same triple again is a reinforcement: independent evidence, decayed old confidence, reinforcedAt moves', async (ctx) => {
    const fact = { text: 'User prefers PDF', subject: 'user', predicate: 'works_with', object: 'pdf', confidence: 0.6, observedAt: T0 };
    const first = await ctx.store.apply(assertEntry(fact), ++ctx.seq);
    assert.is(first.status, 'created');
    const second = await ctx.store.apply(assertEntry({ ...fact, confidence: 0.5, observedAt: T0 + 30 * DAY }), ++ctx.seq);
    assert.is(second.status, 'reinforced');
    assert.is(second.factId, first.factId);
    const f = ctx.store.getFact(first.factId!)!;
    // 0.6 halved over one half-life = 0.3; combined with 0.5: 1 − 0.7 × 0.5 = 0.65.
    assert.ok(Math.abs(f.confidence - 0.65) < 1e-9, String(f.confidence));
    assert.is(f.reinforcedAt, T0 + 30 * DAY);
    assert.is(f.confirmations, 2);
    assert.is(ctx.store.stats().facts, 1);
  });

  test('one predicate: a newer world time closes the active value', async (ctx) => {
    const old = await ctx.store.apply(assertEntry({ text: 'prefers pdf', subject: 'user', predicate: 'prefers_format', object: 'pdf', validFrom: T0 }, { recordedAt: T0 }), ++ctx.seq);
    const neu = await ctx.store.apply(assertEntry({ text: 'prefers links', subject: 'user', predicate: 'prefers_format', object: 'link', validFrom: T0 + DAY }, { recordedAt: T0 + 2 * DAY }), ++ctx.seq);
    assert.is(neu.status, 'superseded_previous');
    assert.equal(neu.supersededIds, [old.factId]);
    const closed = ctx.store.getFact(old.factId!)!;
    assert.is(closed.status, 'superseded');
    assert.is(closed.validTo, T0 + DAY);
    assert.is(closed.invalidatedAt, T0 + 2 * DAY);
    assert.is(ctx.store.getFact(neu.factId!)!.status, 'active');
  });

  test('one predicate: an older value arriving late is recorded already superseded', async (ctx) => {
    const cur = await ctx.store.apply(assertEntry({ text: 'prefers links', subject: 'user', predicate: 'prefers_format', object: 'link', validFrom: T0 + DAY }), ++ctx.seq);
    const late = await ctx.store.apply(assertEntry({ text: 'prefers pdf', subject: 'user', predicate: 'prefers_format', object: 'pdf', validFrom: T0 }, { recordedAt: T0 + 5 * DAY }), ++ctx.seq);
    assert.is(late.status, 'recorded_superseded');
    const f = ctx.store.getFact(late.factId!)!;
    assert.is(f.status, 'superseded');
    assert.is(f.validTo, T0 + DAY);
    assert.is(f.invalidatedAt, T0 + 5 * DAY);
    assert.is(ctx.store.getFact(cur.factId!)!.status, 'active');
  });

  test('one predicate: a validFrom tie breaks on recordedAt, then on source', async (ctx) => {
    const base = { subject: 'user', predicate: 'prefers_format', validFrom: T0 };
    await ctx.store.apply(assertEntry({ ...base, text: 'pdf', object: 'pdf' }, { recordedAt: T0 + 10 }), ++ctx.seq);
    const earlier = await ctx.store.apply(assertEntry({ ...base, text: 'link', object: 'link' }, { recordedAt: T0 + 5 }), ++ctx.seq);
    assert.is(earlier.status, 'recorded_superseded', 'earlier recordedAt loses');
    const later = await ctx.store.apply(assertEntry({ ...base, text: 'zip', object: 'zip' }, { recordedAt: T0 + 20 }), ++ctx.seq);
    assert.is(later.status, 'superseded_previous', 'later recordedAt wins');
    const lowSource = await ctx.store.apply(assertEntry({ ...base, text: 'doc', object: 'doc' }, { recordedAt: T0 + 20, source: { agent: 'agent-0' } }), ++ctx.seq);
    assert.is(lowSource.status, 'recorded_superseded', "'agent-0/' sorts before 'agent-a/mini-1'");
    const highSource = await ctx.store.apply(assertEntry({ ...base, text: 'txt', object: 'txt' }, { recordedAt: T0 + 20, source: { agent: 'agent-z' } }), ++ctx.seq);
    assert.is(highSource.status, 'superseded_previous');
  });

  test('invalidation never touches another subject or predicate; many-valued predicates coexist', async (ctx) => {
    const other = await ctx.store.apply(assertEntry({ text: 'bob prefers pdf', subject: 'bob', predicate: 'prefers_format', object: 'pdf', validFrom: T0 }), ++ctx.seq);
    const lives = await ctx.store.apply(assertEntry({ text: 'user lives in Oslo', subject: 'user', predicate: 'lives_in', object: 'oslo', validFrom: T0 }), ++ctx.seq);
    const w1 = await ctx.store.apply(assertEntry({ text: 'works with bob', subject: 'user', predicate: 'works_with', object: { entity: 'bob' } }), ++ctx.seq);
    const w2 = await ctx.store.apply(assertEntry({ text: 'works with eve', subject: 'user', predicate: 'works_with', object: { entity: 'eve' } }), ++ctx.seq);
    assert.is(w2.status, 'created');
    await ctx.store.apply(assertEntry({ text: 'user prefers pdf', subject: 'user', predicate: 'prefers_format', object: 'pdf', validFrom: T0 }), ++ctx.seq);
    await ctx.store.apply(assertEntry({ text: 'user prefers link', subject: 'user', predicate: 'prefers_format', object: 'link', validFrom: T0 + DAY }), ++ctx.seq);
    for (const r of [other, lives, w1, w2]) assert.is(ctx.store.getFact(r.factId!)!.status, 'active', r.factId);
  });

  test('facts without subject or predicate: identical normalized text reinforces', async (ctx) => {
    const a = await ctx.store.apply(assertEntry({ text: 'The user never takes meetings before 10' }), ++ctx.seq);
    const b = await ctx.store.apply(assertEntry({ text: '  the user NEVER takes   meetings before 10 ' }), ++ctx.seq);
    const c = await ctx.store.apply(assertEntry({ text: 'The user never takes meetings before 11' }), ++ctx.seq);
    assert.is(b.status, 'reinforced');
    assert.is(b.factId, a.factId);
    assert.is(c.status, 'created');
  });

  test('retract closes a fact: out of recall, still in history', async (ctx) => {
    const r = await ctx.store.apply(assertEntry({ text: 'user lives in Oslo', subject: 'user', predicate: 'lives_in', object: 'oslo' }), ++ctx.seq);
    const x = await ctx.store.apply(entry({ op: 'retract', factId: r.factId!, recordedAt: T0 + DAY }), ++ctx.seq);
    assert.is(x.status, 'retracted');
    const f = ctx.store.getFact(r.factId!)!;
    assert.is(f.status, 'retracted');
    assert.is(f.validTo, T0 + DAY);
    assert.is(ctx.store.recall({ query: 'Oslo', now: T0 + DAY }).facts.length, 0);
    assert.is(ctx.store.history('user', 'lives_in').length, 1);
    assert.is(ctx.store.recall({ query: 'Oslo', now: T0 + DAY, includeInactive: true }).facts.length, 1);
  });

  test('a repeated opId returns the original result marked duplicate and changes nothing but appliedSeq', async (ctx) => {
    const e = assertEntry({ text: 'user likes tea', confidence: 0.5 });
    const first = await ctx.store.apply(e, ++ctx.seq);
    const before = ctx.store.getFact(first.factId!);
    const again = await ctx.store.apply(assertEntry({ text: 'user likes tea', confidence: 0.9 }, { opId: e.opId }), ++ctx.seq);
    assert.equal(again, { ...first, duplicate: true });
    assert.equal(ctx.store.getFact(first.factId!), before);
    assert.is(ctx.store.appliedSeq, 2);
    assert.equal(ctx.store.resultOf(e.opId), first);
  });

  test('entries at or below appliedSeq are skipped (replay is idempotent)', async (ctx) => {
    const log = [1, 2, 3].map((i) => ({ seq: i, entry: assertEntry({ text: `fact number ${i}` }) }));
    await ctx.store.applyBatch(log);
    const digest = ctx.store.digest();
    assert.equal(await ctx.store.applyBatch(log), []);
    assert.equal(await ctx.store.applyBatch(log.slice(0, 2)), []);
    assert.is(ctx.store.digest(), digest);
    assert.is(ctx.store.appliedSeq, 3);
  });

  test('bad or dangling entries are rejected deterministically and appliedSeq still advances', async (ctx) => {
    const missing = await ctx.store.apply(entry({ op: 'reinforce', factId: 'email:0000000099:0' }), ++ctx.seq);
    assert.is(missing.status, 'rejected');
    assert.is(missing.error?.code, 'NOT_FOUND');
    const bad = await ctx.store.apply({ v: 1, op: 'assert', opId: 'bad-1', recordedAt: T0, source: { agent: 'a' }, fact: { text: '' } }, ++ctx.seq);
    assert.is(bad.status, 'rejected');
    assert.is(bad.error?.code, 'BAD_REQUEST');
    assert.match(bad.error!.message, 'fact.text');
    assert.is(ctx.store.appliedSeq, 2);
    assert.is(ctx.store.stats().facts, 0);
  });

  test('entities: upsert merges, aliases resolve subjects to the entity id', async (ctx) => {
    await ctx.store.apply(entry({ op: 'entity', entity: { id: 'bob-smith', name: 'Bob Smith', aliases: ['Bob'] } }), ++ctx.seq);
    await ctx.store.apply(entry({ op: 'entity', entity: { id: 'bob-smith', aliases: ['bobby'], attributes: { team: 'ops' } } }), ++ctx.seq);
    const e = ctx.store.getEntity('Bob')!;
    assert.equal(e.aliases, ['Bob', 'bobby']);
    assert.is(e.name, 'Bob Smith');
    assert.equal(e.attributes, { team: 'ops' });
    const r = await ctx.store.apply(assertEntry({ text: 'Bobby prefers calls', subject: 'bobby', predicate: 'works_with', object: { entity: 'BOB' } }), ++ctx.seq);
    const f = ctx.store.getFact(r.factId!)!;
    assert.is(f.subject, 'bob-smith');
    assert.equal(f.object, { entity: 'bob-smith' });
    assert.is(ctx.store.recall({ subject: 'Bob', now: T0 }).facts[0]?.id, r.factId);
    assert.is(ctx.store.stats().entities, 1);
  });

  test('markers are recorded for leadership()', async (ctx) => {
    assert.is(ctx.store.leadership(), undefined);
    await ctx.store.apply(entry({ op: 'marker', kind: 'epoch', epoch: 3, node: 'mini-2' }), ++ctx.seq);
    assert.equal(ctx.store.leadership(), { kind: 'epoch', epoch: 3, node: 'mini-2', seq: 1 });
  });

  test('decay: effective confidence halves per half-life and facts under the floor leave recall', async (ctx) => {
    await ctx.store.apply(assertEntry({ text: 'user likes jazz', confidence: 0.8, observedAt: T0, halfLifeDays: 10 }), ++ctx.seq);
    const at10 = ctx.store.recall({ query: 'jazz', now: T0 + 10 * DAY }).facts[0]!;
    assert.ok(Math.abs(at10.effectiveConfidence - 0.4) < 1e-9);
    assert.is(ctx.store.recall({ query: 'jazz', now: T0 + 40 * DAY }).facts.length, 1, '0.05 is not under the floor');
    assert.is(ctx.store.recall({ query: 'jazz', now: T0 + 41 * DAY }).facts.length, 0);
    assert.is(ctx.store.recall({ query: 'jazz', now: T0 + 41 * DAY, minConfidence: 0.01 }).facts.length, 1);
  });

  test('asOf: what was believed true then', async (ctx) => {
    await ctx.store.apply(assertEntry({ text: 'user prefers pdf attachments', subject: 'user', predicate: 'prefers_format', object: 'pdf', validFrom: T0 }, { recordedAt: T0 }), ++ctx.seq);
    await ctx.store.apply(assertEntry({ text: 'user prefers links over attachments', subject: 'user', predicate: 'prefers_format', object: 'link', validFrom: T0 + 10 * DAY }, { recordedAt: T0 + 10 * DAY }), ++ctx.seq);
    const q = (asOf: number) => ctx.store.recall({ query: 'attachments', asOf, now: T0 + 20 * DAY }).facts.map((f) => f.object);
    assert.equal(q(T0 - 1), []);
    assert.equal(q(T0 + 5 * DAY), ['pdf']);
    assert.equal(q(T0 + 15 * DAY), ['link']);
    assert.equal(ctx.store.recall({ query: 'attachments', now: T0 + 20 * DAY }).facts.map((f) => f.object), ['link']);
  });

  test('recall ranks by relevance, then confidence; filters by subject and predicate', async (ctx) => {
    await ctx.store.apply(assertEntry({ text: 'quarterly report goes out as a link' , confidence: 0.9 }), ++ctx.seq);
    await ctx.store.apply(assertEntry({ text: 'send the quarterly report as a PDF attachment', confidence: 0.9 }), ++ctx.seq);
    await ctx.store.apply(assertEntry({ text: 'send invoices as PDF attachment', confidence: 0.4 }), ++ctx.seq);
    await ctx.store.apply(assertEntry({ text: 'send contracts as PDF attachment', confidence: 0.9 }), ++ctx.seq);
    await ctx.store.apply(assertEntry({ text: 'bob likes attachment previews', subject: 'bob', predicate: 'likes', object: 'previews' }), ++ctx.seq);
    const facts = ctx.store.recall({ query: 'quarterly report PDF attachment', now: T0 }).facts;
    assert.is(facts[0]!.text, 'send the quarterly report as a PDF attachment');
    const pdf = ctx.store.recall({ query: 'pdf attachment', now: T0 }).facts.map((f) => f.text);
    assert.ok(pdf.indexOf('send contracts as PDF attachment') < pdf.indexOf('send invoices as PDF attachment'), 'higher confidence first');
    assert.equal(ctx.store.recall({ query: 'attachment', subject: 'bob', now: T0 }).facts.map((f) => f.subject), ['bob']);
    assert.equal(ctx.store.recall({ query: 'attachment', subject: 'bob', predicate: 'other', now: T0 }).facts, []);
    assert.is(ctx.store.recall({ query: 'attachment', now: T0, limit: 2 }).facts.length, 2);
  });

  test('graph expansion: facts about entities within n hops of the matches', async (ctx) => {
    await ctx.store.apply(assertEntry({ text: 'user works with bob on budgets', subject: 'user', predicate: 'works_with', object: { entity: 'bob' } }), ++ctx.seq);
    await ctx.store.apply(assertEntry({ text: 'bob reports to carol', subject: 'bob', predicate: 'reports_to', object: { entity: 'carol' } }), ++ctx.seq);
    await ctx.store.apply(assertEntry({ text: 'carol prefers mornings', subject: 'carol', predicate: 'prefers_time', object: 'morning' }), ++ctx.seq);
    const hops = (n: number) => ctx.store.recall({ query: 'budgets', now: T0, hops: n }).facts.map((f) => [f.subject, f.hop]);
    assert.equal(hops(0), [['user', 0]]);
    assert.equal(hops(1), [['user', 0], ['bob', 1]]);
    assert.equal(hops(2), [['user', 0], ['bob', 1], ['carol', 2]]);
  });

  test('state survives close and reopen; close is idempotent', async (ctx) => {
    const r = await ctx.store.apply(assertEntry({ text: 'user prefers dark mode' }), ++ctx.seq);
    const digest = ctx.store.digest();
    await ctx.store.close();
    await ctx.store.close();
    ctx.store = open({ path: ctx.dir.path, domain: 'email', predicates: PREDICATES, durability: 'none' });
    assert.is(ctx.store.appliedSeq, 1);
    assert.is(ctx.store.digest(), digest);
    assert.is(ctx.store.recall({ query: 'dark mode', now: T0 }).facts[0]?.id, r.factId);
  });

  test('facts stay findable across index segments and restarts', async (ctx) => {
    await ctx.store.apply(assertEntry({ text: 'the hangar door code changed', subject: 'user', predicate: 'works_with', object: 'hangar' }), 1);
    // Far enough ahead to close the first index segment, then a fact in the new open one.
    await ctx.store.apply(assertEntry({ text: 'the hangar lights are on a timer' }), 50_000);
    const texts = () => ctx.store.recall({ query: 'hangar', now: T0 }).facts.map((f) => f.text).sort();
    assert.equal(texts(), ['the hangar door code changed', 'the hangar lights are on a timer']);
    assert.is(ctx.store.recall({ subject: 'user', predicate: 'works_with', now: T0 }).facts.length, 1);
    await ctx.store.close();
    ctx.store = open({ path: ctx.dir.path, domain: 'email', predicates: PREDICATES, durability: 'none' });
    assert.equal(texts(), ['the hangar door code changed', 'the hangar lights are on a timer']);
    assert.is(ctx.store.history('user').length, 1);
  });

  test('a grouped log message applies each entry in order; every result carries the message\'s log sequence', async (ctx) => {
    const entries = [
      assertEntry({ text: 'prefers pdf', subject: 'user', predicate: 'prefers_format', object: 'pdf', validFrom: T0 }),
      assertEntry({ text: 'prefers links', subject: 'user', predicate: 'prefers_format', object: 'link', validFrom: T0 + DAY }, { recordedAt: T0 + 1 }),
      entry({ op: 'retract', factId: 'email:nope:0' }),
    ];
    const batch: LogMessage = { v: 1, op: 'batch', opId: 'group-1', recordedAt: T0, entries };
    const results = await ctx.store.applyBatch([{ seq: 1, entry: batch }]);
    assert.equal(results.map((r) => [r.seq, r.opId, r.status]), [
      [1, entries[0]!.opId, 'created'],
      [1, entries[1]!.opId, 'superseded_previous'],
      [1, entries[2]!.opId, 'rejected'],
    ]);
    assert.equal(results[1]!.supersededIds, [results[0]!.factId]);
    assert.is(ctx.store.appliedSeq, 1);
    assert.equal(ctx.store.resultOf(entries[1]!.opId), results[1]);
    assert.equal(ctx.store.history('user', 'prefers_format').map((f) => f.status), ['superseded', 'active']);
    // Replayed, it changes nothing; the next message's fact gets an id of its own.
    assert.equal(await ctx.store.applyBatch([{ seq: 1, entry: batch }]), []);
    const next = await ctx.store.apply(assertEntry({ text: 'a later fact' }), 2);
    assert.ok(!results.some((r) => r.factId === next.factId));
    assert.is(ctx.store.getFact(next.factId!)?.text, 'a later fact');
  });

  test('a malformed grouped message is one rejected op, with the message\'s opId', async (ctx) => {
    const empty = { v: 1, op: 'batch', opId: 'group-empty', recordedAt: T0, entries: [] } as unknown as LogMessage;
    const results = await ctx.store.applyBatch([{ seq: 1, entry: empty }]);
    assert.is(results.length, 1);
    assert.equal([results[0]!.seq, results[0]!.opId, results[0]!.status, results[0]!.error?.code], [1, 'group-empty', 'rejected', 'BAD_REQUEST']);
    assert.is(ctx.store.appliedSeq, 1);
  });

  test.run();
}
