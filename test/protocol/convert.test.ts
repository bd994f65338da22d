/** Wire ↔ shard conversions: ISO strings to epoch ms and back, apply results to replies. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  ErrorCode,
  ShardmindError,
  parseRecallRequest,
  parseRememberRequest,
  rememberReply,
  rememberStatus,
  toFactInput,
  toRecallQuery,
  toWireFact,
  writeReply,
} from '../../protocol/index.ts';
import type { ApplyResult, Fact, RecalledFact } from '../../shards/index.ts';

const T0 = Date.UTC(2026, 10, 24, 10, 0, 0);

const stored: Fact = {
  id: 'email:000000002a:0',
  domain: 'email',
  text: 'The user prefers PDF attachments over links',
  subject: 'user',
  predicate: 'prefers_attachment_format',
  object: 'pdf',
  confidence: 0.9,
  halfLifeDays: 120,
  observedAt: T0,
  validFrom: T0,
  recordedAt: T0 + 5,
  reinforcedAt: T0,
  confirmations: 1,
  source: { agent: 'agent-a', node: 'mini-1' },
  status: 'active',
  seq: 42,
};

function throwsCode(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (err) {
    assert.instance(err, ShardmindError);
    assert.is((err as ShardmindError).code, code);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

test('toFactInput - ISO timestamps become epoch ms; absent stays absent', () => {
  const req = parseRememberRequest({
    v: 1, agent: 'a',
    fact: { text: 't', subject: 'user', predicate: 'p', object: { entity: 'bob' }, confidence: 0.5,
      observedAt: '2026-11-24T10:00:00Z', validFrom: '2026-11-24T11:00:00+01:00', validTo: '2026-12-01', halfLifeDays: 7 },
  });
  assert.equal(toFactInput(req.fact), {
    text: 't', subject: 'user', predicate: 'p', object: { entity: 'bob' }, confidence: 0.5,
    observedAt: T0, validFrom: T0, validTo: Date.UTC(2026, 11, 1), halfLifeDays: 7,
  });
  const bare = toFactInput({ text: 'only text' });
  assert.equal(bare, { text: 'only text' });
  assert.equal(Object.keys(bare), ['text']);
});

test('toRecallQuery - asOf to ms, now injected, limit clamped to the shard maximum', () => {
  const req = parseRecallRequest({ v: 1, query: 'pdf', subject: 'user', asOf: '2026-11-24T10:00:00Z', limit: 500, hops: 1 });
  assert.equal(toRecallQuery(req, T0 + 1, 100), { query: 'pdf', subject: 'user', asOf: T0, limit: 100, hops: 1, now: T0 + 1 });
  assert.equal(toRecallQuery(parseRecallRequest({ v: 1, query: 'x' }), 7), { query: 'x', now: 7 });
});

test('toWireFact - a stored fact (history, get) has ISO times and no score', () => {
  const w = toWireFact({ ...stored, validTo: T0 + 1000, invalidatedAt: T0 + 2000, status: 'superseded' });
  assert.equal(w, {
    id: 'email:000000002a:0', domain: 'email', text: 'The user prefers PDF attachments over links', subject: 'user',
    predicate: 'prefers_attachment_format', object: 'pdf', confidence: 0.9,
    validFrom: '2026-11-24T10:00:00.000Z', validTo: '2026-11-24T10:00:01.000Z', observedAt: '2026-11-24T10:00:00.000Z',
    recordedAt: '2026-11-24T10:00:00.005Z', invalidatedAt: '2026-11-24T10:00:02.000Z',
    reinforcedAt: '2026-11-24T10:00:00.000Z', confirmations: 1, status: 'superseded',
    source: { agent: 'agent-a', node: 'mini-1' },
  });
  assert.not.ok('score' in w);
});

test('toWireFact - a recalled fact carries score and effective confidence', () => {
  const recalled: RecalledFact = { ...stored, effectiveConfidence: 0.45, score: 0.3, hop: 0 };
  const w = toWireFact(recalled);
  assert.is(w.score, 0.3);
  assert.is(w.effectiveConfidence, 0.45);
  assert.is(w.validFrom, '2026-11-24T10:00:00.000Z');
  assert.not.ok('validTo' in w);
  assert.not.ok('hop' in w);
});

test('rememberStatus and rememberReply - the four statuses pass, duplicates are flagged', () => {
  for (const status of ['created', 'reinforced', 'superseded_previous', 'recorded_superseded'] as const) {
    assert.is(rememberStatus({ seq: 1, opId: 'o', status, factId: 'f' }), status);
  }
  const r: ApplyResult = { seq: 42, opId: 'o', status: 'superseded_previous', factId: 'email:1:0', supersededIds: ['email:0:0'], duplicate: true };
  assert.equal(rememberReply('email', r), {
    v: 1, domain: 'email', seq: 42, factId: 'email:1:0', status: 'superseded_previous', superseded: ['email:0:0'], duplicate: true,
  });
  assert.equal(rememberReply('email', { seq: 3, opId: 'o', status: 'created', factId: 'f' }), {
    v: 1, domain: 'email', seq: 3, factId: 'f', status: 'created',
  });
});

test('rememberStatus - a rejected apply is thrown with its code; an odd status is INTERNAL', () => {
  throwsCode(() => rememberStatus({ seq: 1, opId: 'o', status: 'rejected', error: { code: 'NOT_FOUND', message: 'no fact x' } }), ErrorCode.NOT_FOUND);
  throwsCode(() => rememberStatus({ seq: 1, opId: 'o', status: 'rejected', error: { code: 'BAD_REQUEST', message: 'bad' } }), ErrorCode.BAD_REQUEST);
  throwsCode(() => rememberStatus({ seq: 1, opId: 'o', status: 'forgotten', factId: 'f' }), ErrorCode.INTERNAL);
});

test('writeReply - forget and retract results; a rejected one is NOT_FOUND', () => {
  assert.equal(writeReply('email', { seq: 9, opId: 'o', status: 'retracted', factId: 'f' }), {
    v: 1, domain: 'email', seq: 9, factId: 'f', status: 'retracted',
  });
  throwsCode(() => writeReply('email', { seq: 9, opId: 'o', status: 'rejected', error: { code: 'NOT_FOUND', message: 'no such fact' } }), ErrorCode.NOT_FOUND);
  throwsCode(() => writeReply('email', { seq: 9, opId: 'o', status: 'created', factId: 'f' }), ErrorCode.INTERNAL);
});

test.run();
