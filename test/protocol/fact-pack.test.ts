/**
 * `packRecallReply` writes a recall reply's msgpack straight from the store's facts. It must produce exactly the
 * bytes of the generic path (`toWireFact` per fact, then `encodePayload`), for every shape of fact: optional fields
 * present or not, entity or literal objects, non-ASCII and long text, every number range, many facts, and across
 * the end of its buffer chunk.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodePayload, encodePayload, packRecallReply, toWireFact } from '../../protocol/index.ts';
import type { RecalledFact } from '../../shards/index.ts';

/** A deterministic PRNG, so a failure names a reproducible case. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TEXTS = [
  '',
  'short',
  'exactly thirty-one characters!!',
  'exactly thirty-two characters!!!',
  'ünïcödé in a short one',
  'emoji 🙂 and a surrogate pair',
  '日本語のテキスト',
  'x'.repeat(255),
  'y'.repeat(256),
  'é'.repeat(200),
  'z'.repeat(70_000),
];
const NUMBERS = [0, 1, 31, 127, 128, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, -1, -32, -33, -128, -129, -32_768, -32_769, -(2 ** 31), -(2 ** 31) - 1, 0.5, 0.8, 1e-9, 19.166552003027004, -2.5];

function fact(r: () => number, i: number): RecalledFact {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const maybe = <T>(v: T): T | undefined => (r() < 0.5 ? v : undefined);
  const t = 1_795_491_943_579 + Math.floor(r() * 1e9);
  const f: Record<string, unknown> = {
    id: `email:${i.toString(36).padStart(10, '0')}:0`,
    domain: 'email',
    text: pick(TEXTS),
    subject: maybe(pick(['user', 'Dana Ölund', 'ent8013'])),
    predicate: maybe('prefers'),
    object: maybe(r() < 0.5 ? pick(TEXTS) : { entity: pick(['dana', 'Zoë']) }),
    confidence: pick(NUMBERS),
    halfLifeDays: 30,
    observedAt: t,
    validFrom: t,
    validTo: maybe(t + 1000),
    recordedAt: t + 1,
    invalidatedAt: maybe(t + 2),
    reinforcedAt: t + 3,
    confirmations: pick(NUMBERS),
    source: { agent: 'agent-a', ...(r() < 0.5 ? { task: 't-1' } : {}), ...(r() < 0.5 ? { node: 'mini-1' } : {}) },
    status: pick(['active', 'superseded', 'retracted']),
    seq: i,
    episodeId: `email:${i}/e`,
    effectiveConfidence: pick(NUMBERS),
    score: pick(NUMBERS),
    hop: 0,
  };
  for (const k of Object.keys(f)) if (f[k] === undefined) delete f[k];
  return f as unknown as RecalledFact;
}

function generic(domain: string, facts: readonly RecalledFact[], seq: number): Uint8Array {
  return encodePayload({ v: 1, domains: [domain], facts: facts.map((f) => toWireFact(f)), seqs: { [domain]: seq } }, 'msgpack');
}

test('the same bytes as toWireFact + encodePayload, for facts of every shape', () => {
  const r = prng(7);
  for (let round = 0; round < 400; round++) {
    const n = Math.floor(r() * 20); // 0..19: fixarray and array16
    const facts = Array.from({ length: n }, (_, i) => fact(r, round * 100 + i));
    const seq = NUMBERS[round % NUMBERS.length]!;
    const packed = packRecallReply('email', facts, Math.abs(seq));
    const expected = generic('email', facts, Math.abs(seq));
    assert.equal(Buffer.from(packed).toString('hex'), Buffer.from(expected).toString('hex'), `round ${round}`);
  }
});

test('replies already handed out stay intact while later ones fill and replace the buffer chunk', () => {
  const r = prng(11);
  const kept: { packed: Uint8Array; expected: Uint8Array }[] = [];
  // ~3 KB each: several chunks' worth, so some replies straddle a chunk's end and start over in a fresh one.
  for (let i = 0; i < 200; i++) {
    const facts = Array.from({ length: 8 }, (_, k) => ({ ...fact(r, i * 10 + k), text: 'w'.repeat(300) }) as RecalledFact);
    kept.push({ packed: packRecallReply('files', facts, i), expected: generic('files', facts, i) });
  }
  for (const { packed, expected } of kept) assert.ok(Buffer.from(packed).equals(Buffer.from(expected)));
  assert.equal(decodePayload(kept[0]!.packed, 'msgpack'), decodePayload(kept[0]!.expected, 'msgpack'));
});

test('a reply larger than a chunk', () => {
  const r = prng(3);
  const facts = Array.from({ length: 3 }, (_, k) => ({ ...fact(r, k), text: 'q'.repeat(100_000) }) as RecalledFact);
  assert.ok(Buffer.from(packRecallReply('email', facts, 9)).equals(Buffer.from(generic('email', facts, 9))));
});

test.run();
