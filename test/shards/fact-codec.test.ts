/**
 * The fact record format (`shards/fact-codec.ts`): every field survives a round trip, absent optionals stay
 * absent, the header numbers recall peeks match, and the record length is found inside a longer reused buffer.
 */
import { test } from 'uvu';
import { readFactText } from '../../shards/fact-codec.ts';
import * as assert from 'uvu/assert';
import { decodeFact, encodeFact, factByteLength, factIdFor, peekFact, readIdentityFields, type Fact, type FactNumbers, type IdentityFields } from '../../shards/index.ts';

const base: Fact = {
  id: factIdFor('mail', 42),
  domain: 'mail',
  text: 'The user prefers PDF attachments — über alles 😀',
  confidence: 0.8125,
  halfLifeDays: 30,
  observedAt: 1_764_000_000_123,
  validFrom: 1_764_000_000_123,
  recordedAt: 1_764_000_000_456,
  reinforcedAt: 1_764_000_000_123,
  confirmations: 1,
  source: { agent: 'agent-a' },
  status: 'active',
  seq: 42,
};

const variants: Fact[] = [
  base,
  { ...base, episodeId: `${base.id}/0000000016` },
  { ...base, subject: 'user', predicate: 'prefers', object: 'pdf', source: { agent: 'a', task: 't-1', node: 'mini-2' } },
  { ...base, subject: 'user', predicate: 'works_with', object: { entity: 'bob' }, source: { agent: 'a', node: 'mini-1' }, validTo: 1_800_000_000_000 },
  { ...base, subject: 'user', status: 'superseded', latestValidFrom: 1_764_000_009_000, invalidatedAt: 1_764_000_010_000, confirmations: 7, seq: 2 ** 40 + 3, id: factIdFor('mail', 2 ** 40 + 3) },
  { ...base, text: '', status: 'forgotten', source: { agent: 'a', task: 'only-task' } },
];

test('every field survives a round trip; absent optionals stay absent', () => {
  for (const f of variants) {
    const bytes = Buffer.from(encodeFact(f));
    assert.equal(decodeFact(bytes, 'mail'), f);
  }
});

test('the numbers recall peeks and the record length, read inside a longer buffer', () => {
  for (const f of variants) {
    const record = Buffer.from(encodeFact(f));
    const longer = Buffer.concat([record, Buffer.alloc(100, 0xee)]);
    assert.is(factByteLength(longer), record.length);
    const peeked = peekFact(longer, {} as FactNumbers);
    assert.equal(peeked, {
      status: f.status,
      confidence: f.confidence,
      halfLifeDays: f.halfLifeDays,
      validFrom: f.validFrom,
      validTo: f.validTo,
      recordedAt: f.recordedAt,
      invalidatedAt: f.invalidatedAt,
      reinforcedAt: f.reinforcedAt,
    });
  }
});

test('the text alone, as decoding gives it (filling fact words reads only that)', () => {
  for (const f of variants) {
    const bytes = Buffer.from(encodeFact(f));
    assert.is(readFactText(bytes), decodeFact(bytes, f.domain).text);
    assert.is(readFactText(bytes), f.text);
  }
});

test('the identity fields the write indexes are rebuilt from', () => {
  for (const f of variants) {
    const got = readIdentityFields(Buffer.from(encodeFact(f)), {} as IdentityFields);
    if (f.status !== 'active') {
      assert.is(got.active, false);
      continue;
    }
    const o = f.object;
    assert.equal(got, {
      active: true,
      text: o === undefined ? f.text : '',
      subject: f.subject,
      predicate: f.predicate,
      object: o === undefined ? undefined : typeof o === 'string' ? o : o.entity,
      objectIsEntity: o !== undefined && typeof o !== 'string',
    });
  }
});

test('equal facts encode to equal bytes (replicas write identical records)', () => {
  const a = Buffer.from(encodeFact(variants[2]!));
  const b = Buffer.from(encodeFact(JSON.parse(JSON.stringify(variants[2]!)) as Fact));
  assert.ok(a.equals(b));
});

test.run();
