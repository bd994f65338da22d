/**
 * `MsgpackWriter` writes what msgpackr writes under `codec.ts`'s options: every string length around its header and
 * copy boundaries (byte by byte under 32 characters, `utf8Write` from there), in ASCII and in 2-, 3- and 4-byte
 * UTF-8, every double (written from the number's own bytes), and runs of raw bytes short and long.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodePayload } from '../../protocol/index.ts';
import { MsgpackWriter } from '../../protocol/msgpack-writer.ts';

const w = new MsgpackWriter();
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

test('strings of every length to 300, in ASCII and in multi-byte UTF-8, as msgpackr writes them', () => {
  // Whole characters only: a lone surrogate is written as U+FFFD here (Buffer's encoder) and differently by msgpackr.
  for (const unit of ['a', 'é', '語', '🙂', 'a\u0000']) {
    for (let n = 0; n <= 300; n++) {
      const s = unit.repeat(n);
      assert.is(hex(w.written(() => w.str(s))), hex(encodePayload(s, 'msgpack')), `${JSON.stringify(unit)} × ${n}`);
    }
  }
  // A short string that turns out not to be ASCII after its first characters.
  for (const s of ['abcdefghijklmnopqrstuvwxyz1234é', 'abcé', 'é', `${'a'.repeat(31)}é`, `${'a'.repeat(32)}é`]) {
    assert.is(hex(w.written(() => w.str(s))), hex(encodePayload(s, 'msgpack')), s);
  }
});

test('doubles, written from their bytes', () => {
  const doubles = [0.5, -0.5, 0.1, 0.8, 0.7999999920844304, 19.166551539787672, 1e300, -1.5e-300, 5e-324, Number.MAX_VALUE, Number.EPSILON, Infinity, -Infinity, NaN, 2 ** 53 + 2, -(2 ** 60)];
  for (const d of doubles) assert.is(hex(w.written(() => w.num(d))), hex(encodePayload(d, 'msgpack')), String(d));
});

test('raw bytes, short ones byte by byte and long ones in one copy', () => {
  for (const n of [0, 1, 31, 32, 33, 200]) {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff);
    assert.is(hex(w.written(() => w.raw(bytes))), hex(bytes), `${n} bytes`);
  }
});

test.run();
