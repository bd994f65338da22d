/**
 * `packRememberReply` writes the bytes msgpackr writes for `rememberReply`'s object — for every status, with and
 * without superseded ids and `duplicate`, sequences past 32 bits, non-ASCII and long ids — and refuses what
 * `rememberReply` refuses, with the same error.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ShardmindError, decodePayload, encodePayload, packRememberReply, rememberReply } from '../../protocol/index.ts';
import type { ApplyResult } from '../../shards/index.ts';

const results: ApplyResult[] = [];
for (const status of ['created', 'reinforced', 'superseded_previous', 'recorded_superseded'] as const) {
  for (const seq of [1, 127, 128, 65_535, 65_536, 4_294_967_295, 4_294_967_296, 2 ** 40 + 3]) {
    results.push({ opId: `op-${seq}`, seq, status, factId: `email:${seq}:0` });
  }
  results.push({ opId: 'dup', seq: 7, status, factId: 'email:7:0', duplicate: true });
  results.push({ opId: 'sup', seq: 9, status, factId: 'email:9:0', supersededIds: ['email:3:0', 'email:5:0'] });
  results.push({ opId: 'both', seq: 9, status, factId: 'email:9:0', supersededIds: ['email:3:0'], duplicate: true });
  results.push({ opId: 'none', seq: 9, status, factId: 'email:9:0', supersededIds: [], duplicate: false });
  results.push({ opId: 'long', seq: 11, status, factId: `email:${'9'.repeat(300)}:0` });
  results.push({ opId: 'utf8', seq: 12, status, factId: 'émail:12:0', supersededIds: ['日本:1:0'] });
}

test('the bytes are those of rememberReply encoded by msgpackr', () => {
  for (const domain of ['email', 'calendar_2', 'x'.repeat(40)]) {
    for (const r of results) {
      const expected = encodePayload(rememberReply(domain, r), 'msgpack');
      const packed = packRememberReply(domain, r);
      assert.equal(Buffer.from(packed).toString('hex'), Buffer.from(expected).toString('hex'), `${domain} ${JSON.stringify(r)}`);
      assert.equal(decodePayload(packed, 'msgpack'), rememberReply(domain, r));
    }
  }
});

test('replies written one after another keep their bytes (each is a view that is never written again)', () => {
  const packed = results.map((r) => packRememberReply('email', r));
  for (let i = 0; i < 5000; i++) packRememberReply('email', results[i % results.length]!);
  for (const [i, p] of packed.entries()) assert.equal(decodePayload(p, 'msgpack'), rememberReply('email', results[i]!));
});

test('a rejected apply or a result without a fact is refused as rememberReply refuses it', () => {
  const rejected: ApplyResult = { opId: 'bad', seq: 3, status: 'rejected', error: { code: 'BAD_REQUEST', message: 'text: too long' } };
  const noFact: ApplyResult = { opId: 'odd', seq: 3, status: 'created' };
  for (const r of [rejected, noFact]) {
    let theirs: unknown;
    let ours: unknown;
    try {
      rememberReply('email', r);
    } catch (err) {
      theirs = err;
    }
    try {
      packRememberReply('email', r);
    } catch (err) {
      ours = err;
    }
    assert.ok(ours instanceof ShardmindError && theirs instanceof ShardmindError);
    assert.is((ours as ShardmindError).code, (theirs as ShardmindError).code);
    assert.is((ours as ShardmindError).message, (theirs as ShardmindError).message);
  }
});

test.run();
