/**
 * The router passes a shard's successful reply bytes on undecoded; `isPlainSuccess` is what decides that without
 * decoding. An error reply must never pass as a success, whichever way its map header is written.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ErrorCode, ShardmindError, encodePayload, errorReply } from '../../protocol/index.ts';
import { isPlainSuccess } from '../../router/index.ts';

const fixmap = (bytes: Uint8Array): Uint8Array => {
  // The same body with a fixmap header instead of msgpackr's map16 (another writer's choice).
  assert.is(bytes[0], 0xde);
  return Uint8Array.of(0x80 | bytes[2]!, ...bytes.subarray(3));
};

test('a recall reply is a plain success; an error reply is not, with either map header', () => {
  const ok = encodePayload({ v: 1, domains: ['email'], facts: [], seqs: { email: 3 } }, 'msgpack');
  const err = encodePayload(errorReply(new ShardmindError(ErrorCode.NOT_LEADER, 'retry')), 'msgpack');
  assert.ok(isPlainSuccess(ok));
  assert.ok(isPlainSuccess(fixmap(ok)));
  assert.not.ok(isPlainSuccess(err));
  assert.not.ok(isPlainSuccess(fixmap(err)));
});

test('anything not starting with v: 1 is decoded to find out', () => {
  assert.not.ok(isPlainSuccess(encodePayload({ domains: ['email'], v: 1 }, 'msgpack')));
  assert.not.ok(isPlainSuccess(encodePayload({ v: 2, domains: [] }, 'msgpack')));
  assert.not.ok(isPlainSuccess(encodePayload([1, 2, 3], 'msgpack')));
  assert.not.ok(isPlainSuccess(new Uint8Array(0)));
});

test.run();
