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
import { NUMBERS, fact, prng } from './recalled-facts.ts';

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
