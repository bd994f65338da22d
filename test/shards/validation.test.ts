/** Validation names the offending field; the pure helpers (decay, conflict order, tokenizer, ids) do their sums. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  challengerWins,
  combineConfidence,
  effectiveConfidence,
  factIdFor,
  openShardStore,
  seqOfFactId,
  ShardValidationError,
  tokenize,
  validateEntry,
  validateRecallQuery,
} from '../../shards/index.ts';
import { DAY, T0 } from './helpers.ts';

function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof ShardValidationError) return e.field;
    throw e;
  }
  return undefined;
}

const ok = { v: 1, op: 'assert', opId: 'o', recordedAt: T0, source: { agent: 'a' }, fact: { text: 'hello' } };

test('validateEntry names the field that is wrong', () => {
  assert.is(fieldOf(() => validateEntry(ok)), undefined);
  assert.is(fieldOf(() => validateEntry({ ...ok, v: 2 })), 'v');
  assert.is(fieldOf(() => validateEntry({ ...ok, opId: '' })), 'opId');
  assert.is(fieldOf(() => validateEntry({ ...ok, recordedAt: 1.5 })), 'recordedAt');
  assert.is(fieldOf(() => validateEntry({ ...ok, source: {} })), 'source.agent');
  assert.is(fieldOf(() => validateEntry({ ...ok, op: 'delete' })), 'op');
  assert.is(fieldOf(() => validateEntry({ ...ok, fact: { text: '  ' } })), 'fact.text');
  assert.is(fieldOf(() => validateEntry({ ...ok, fact: { text: 'x', confidence: 1.5 } })), 'fact.confidence');
  assert.is(fieldOf(() => validateEntry({ ...ok, fact: { text: 'x', predicate: 'p' } })), 'fact.subject');
  assert.is(fieldOf(() => validateEntry({ ...ok, fact: { text: 'x', subject: 'a\x1fb' } })), 'fact.subject');
  assert.is(fieldOf(() => validateEntry({ ...ok, fact: { text: 'x', subject: 's', predicate: 'p', object: { id: 1 } } })), 'fact.object.entity');
  assert.is(fieldOf(() => validateEntry({ ...ok, fact: { text: 'x', validFrom: T0, validTo: T0 } })), 'fact.validTo');
  assert.is(fieldOf(() => validateEntry({ ...ok, fact: { text: 'x', halfLifeDays: 0 } })), 'fact.halfLifeDays');
  assert.is(fieldOf(() => validateEntry({ ...ok, op: 'entity', entity: { id: 'e', aliases: [''] } })), 'entity.aliases[0]');
  assert.is(fieldOf(() => validateEntry({ ...ok, op: 'marker', kind: 'epoch', epoch: -1, node: 'n' })), 'epoch');
  const err = (() => { try { validateEntry({ ...ok, fact: {} }); } catch (e) { return e as ShardValidationError; } })()!;
  assert.is(err.code, 'BAD_REQUEST');
  assert.is(err.message, 'fact.text: must be a non-empty string');
});

test('recall queries and store options are validated too', () => {
  assert.is(fieldOf(() => validateRecallQuery({ now: T0 })), 'query');
  assert.is(fieldOf(() => validateRecallQuery({ query: 'x', now: T0, limit: 0 })), 'limit');
  assert.is(fieldOf(() => validateRecallQuery({ query: 'x', now: T0, hops: 9 })), 'hops');
  assert.is(fieldOf(() => validateRecallQuery({ subject: 'u', now: T0, minConfidence: 2 })), 'minConfidence');
  assert.is(fieldOf(() => openShardStore({ path: '/tmp/never-created', domain: 'Bad Domain' })), 'domain');
  assert.is(fieldOf(() => openShardStore({ path: '/tmp/never-created', domain: 'ok', predicates: { p: { cardinality: 'two' as 'one', halfLifeDays: 1 } } })), 'predicates.p.cardinality');
});

test('decay and evidence arithmetic', () => {
  const f = { confidence: 0.8, reinforcedAt: T0, halfLifeDays: 30 };
  assert.is(effectiveConfidence(f, T0), 0.8);
  assert.ok(Math.abs(effectiveConfidence(f, T0 + 30 * DAY) - 0.4) < 1e-12);
  assert.ok(Math.abs(effectiveConfidence(f, T0 + 60 * DAY) - 0.2) < 1e-12);
  assert.is(effectiveConfidence(f, T0 - DAY), 0.8, 'no growth before reinforcedAt');
  assert.ok(Math.abs(combineConfidence(0.5, 0.5) - 0.75) < 1e-12);
});

test('conflict order: validFrom, then recordedAt, then source string; a full tie goes to the newcomer', () => {
  const base = { validFrom: 10, recordedAt: 10, source: { agent: 'b' } };
  assert.ok(challengerWins({ ...base, validFrom: 11 }, base));
  assert.not.ok(challengerWins({ ...base, validFrom: 9, recordedAt: 99 }, base));
  assert.ok(challengerWins({ ...base, recordedAt: 11 }, base));
  assert.not.ok(challengerWins({ ...base, source: { agent: 'a' } }, base));
  assert.ok(challengerWins({ ...base, source: { agent: 'c' } }, base));
  assert.ok(challengerWins(base, base));
});

test('tokenizer and ids', () => {
  assert.equal(tokenize('The user prefers PDF attachments over links!'), ['user', 'prefer', 'pdf', 'attachment', 'over', 'link']);
  assert.is(factIdFor('email', 42), 'email:0000000016:0');
  assert.is(seqOfFactId('email:0000000016:0'), 42);
  assert.ok(factIdFor('email', 9) < factIdFor('email', 10), 'ids sort by sequence');
});

test.run();
