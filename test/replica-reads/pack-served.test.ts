/**
 * A replica read's recall reply: `packRecallReply` with `servedBy`/`staleMs` writes exactly the bytes of the generic
 * path for `{ v, domains, facts, seqs, servedBy, staleMs }` (and without them, the plain reply's bytes, unchanged).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodePayload, encodePayload, packRecallReply, toWireFact } from '../../protocol/index.ts';
import type { RecalledFact } from '../../shards/index.ts';

function fact(i: number, text: string): RecalledFact {
  const t = 1_795_491_943_579 + i * 1_000;
  return {
    id: `email:${i.toString(36).padStart(10, '0')}:0`,
    domain: 'email',
    text,
    subject: 'user',
    predicate: 'prefers',
    object: i % 2 === 0 ? 'pdf' : { entity: 'bob' },
    confidence: 0.8,
    halfLifeDays: 30,
    observedAt: t,
    validFrom: t,
    recordedAt: t + 1,
    reinforcedAt: t + 1,
    confirmations: 1 + i,
    source: { agent: 'agent-a', node: 'mini-1' },
    status: 'active',
    seq: i,
    episodeId: `email:${i}/e`,
    effectiveConfidence: 0.75,
    score: 0.5 + i / 100,
    hop: 0,
  } as unknown as RecalledFact;
}

const SERVED = [
  { servedBy: 'mini-2', staleMs: 0 },
  { servedBy: 'mini-3', staleMs: 127 },
  { servedBy: 'mini-3', staleMs: 250 },
  { servedBy: 'a-much-longer-node-name-of-sixty-characters-at-most-0123456', staleMs: 70_000 },
  { servedBy: 'mini-1', staleMs: 2 ** 32 },
];

test('with servedBy and staleMs: the same bytes as the generic path', () => {
  for (const [k, served] of SERVED.entries()) {
    for (const n of [0, 1, 5, 20]) {
      const facts = Array.from({ length: n }, (_, i) => fact(i, `fact ${i} ${'é'.repeat(k * 20)}`));
      const packed = packRecallReply('email', facts, 40 + n, served);
      const expected = encodePayload(
        { v: 1, domains: ['email'], facts: facts.map((f) => toWireFact(f)), seqs: { email: 40 + n }, ...served },
        'msgpack',
      );
      assert.is(Buffer.from(packed).toString('hex'), Buffer.from(expected).toString('hex'), `${served.servedBy} ${served.staleMs} n=${n}`);
      const body = decodePayload(packed, 'msgpack') as Record<string, unknown>;
      assert.is(body['servedBy'], served.servedBy);
      assert.is(body['staleMs'], served.staleMs);
    }
  }
});

test('without them: the plain reply, unchanged', () => {
  const facts = [fact(1, 'one'), fact(2, 'two')];
  const packed = packRecallReply('email', facts, 9);
  const expected = encodePayload({ v: 1, domains: ['email'], facts: facts.map((f) => toWireFact(f)), seqs: { email: 9 } }, 'msgpack');
  assert.ok(Buffer.from(packed).equals(Buffer.from(expected)));
  assert.not.ok('servedBy' in (decodePayload(packed, 'msgpack') as object));
});

test.run();
