/**
 * A `recall_batch` reply in msgpack, made of its items' replies as they were written: each item's bytes are what a
 * lone recall of it would have answered (`packRecallTable` / `packRecallReply`, or an error envelope), and the
 * batch only puts `{ "v": 1, "results": [ … ] }` around them — no item is decoded or encoded a second time.
 */

/** `{ "v": 1, "results": ` as msgpack: a map of two, the key `v`, the integer 1, the key `results`. */
const HEAD = Uint8Array.of(0x82, 0xa1, 0x76, 0x01, 0xa7, ...Array.from('results', (c) => c.charCodeAt(0)));

/** The reply around `results`, each already a msgpack value (one item's whole reply). */
export function packRecallBatchReply(results: readonly Uint8Array[]): Uint8Array {
  const n = results.length;
  // An array header: fixarray below 16 items, array16 up to 65 535 (a batch has at most LIMITS.recallBatchItems).
  const arrayHeader = n < 0x10 ? 1 : 3;
  let size = HEAD.length + arrayHeader;
  for (const r of results) size += r.length;
  const out = Buffer.allocUnsafe(size);
  out.set(HEAD, 0);
  let at = HEAD.length;
  if (n < 0x10) out[at++] = 0x90 | n;
  else {
    out[at++] = 0xdc;
    out[at++] = n >> 8;
    out[at++] = n & 0xff;
  }
  for (const r of results) {
    out.set(r, at);
    at += r.length;
  }
  return out;
}
