/**
 * A new fact's record encoded straight into the group being filled (`FactGroups.appendFact`, `encodeFactInto`) is
 * byte for byte what `encodeFact` gives, at any offset, for ASCII and non-ASCII strings and for strings past the
 * hand-copied ASCII length; and the group's records read back as those bytes, across the buffer growing.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { open } from 'lmdb';
import { encodedFactBound, encodeFact, encodeFactInto } from '../../shards/fact-codec.ts';
import { FactGroups } from '../../shards/fact-groups.ts';
import { factIdFor, type Fact } from '../../shards/index.ts';
import type { FactTable } from '../../shards/tables.ts';
import { prng, tempDir } from './helpers.ts';

const fact = (seq: number, text: string, extra: Partial<Fact> = {}): Fact => ({
  id: factIdFor('mail', seq),
  domain: 'mail',
  text,
  confidence: 0.8125,
  halfLifeDays: 30,
  observedAt: 1_764_000_000_123 + seq,
  validFrom: 1_764_000_000_123,
  recordedAt: 1_764_000_000_456 + seq,
  reinforcedAt: 1_764_000_000_123,
  confirmations: 1,
  source: { agent: 'agent-a' },
  status: 'active',
  seq,
  ...extra,
});

const random = prng(7);
const texts = ['', 'plain ascii words', 'über alles 😀 — prefers PDF', 'x'.repeat(127), 'y'.repeat(128), 'z'.repeat(129), `${'é'.repeat(200)} tail`, 'w '.repeat(3000)];
const variants = (seq: number): Fact[] =>
  texts.flatMap((text) => [
    fact(seq, text),
    fact(seq, text, { subject: 'user', predicate: 'prefers', object: 'pdf 😀', source: { agent: 'a', task: 't-1', node: 'mini-2' } }),
    fact(seq, text, { subject: 'ünïcode', predicate: 'works_with', object: { entity: 'bob' }, validTo: 1_800_000_000_000, episodeId: 'ep' }),
  ]);

test('encodeFactInto at any offset gives encodeFact bytes, within the bound', () => {
  const out = Buffer.alloc(64 * 1024, 0xee);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (const f of variants(42)) {
    const expected = Buffer.from(encodeFact(f));
    const start = Math.floor(random() * 1000);
    const end = encodeFactInto(f, out, view, start);
    assert.equal(end - start, expected.length);
    assert.ok(end - start <= encodedFactBound(f));
    assert.equal(Buffer.compare(out.subarray(start, end), expected), 0);
  }
});

test('a group filled in place holds encodeFact records, through growth and flushes', async () => {
  const dir = tempDir();
  const env = open({ path: dir.path, maxDbs: 2, encoding: 'binary', compression: false, noSync: true });
  try {
    const table = env.openDB<Buffer, number>('facts', { encoding: 'binary' }) as unknown as FactTable;
    const groups = new FactGroups(table);
    const expected = new Map<number, Buffer>();
    let seq = 1;
    // Several groups, each with long records so the group's buffer grows past its first 64 KB.
    for (let round = 0; round < 3; round++) {
      env.transactionSync(() => {
        for (const f of variants(0)) {
          const g = { ...f, seq, id: factIdFor('mail', seq) };
          groups.appendFact(g);
          const bytes = Buffer.from(encodeFact(g));
          assert.equal(Buffer.compare(groups.newest(), bytes), 0);
          expected.set(seq, bytes);
          seq += 1 + Math.floor(random() * 3);
        }
        groups.flush();
      });
    }
    for (const [s, bytes] of expected) {
      assert.equal(Buffer.compare(groups.read(s)!, bytes), 0, `read ${s}`);
      assert.equal(Buffer.compare(groups.stored(s)!, bytes), 0, `stored ${s}`);
    }
  } finally {
    await env.close();
    dir.remove();
  }
});

test.run();
