/**
 * A remember's reply written straight as msgpack: the same bytes `encodePayload(rememberReply(domain, r), 'msgpack')`
 * gives (same keys in the same order, same number and string forms), without building the reply object and walking
 * it. 64 concurrent remembers commit together and their 64 replies are written back to back on the leader's event
 * loop before the load comes back (decisions §39), so each reply's microseconds are on that cycle.
 */
import type { ApplyResult } from '../shards/index.ts';
import { rememberStatus, requireFactId } from './convert.ts';
import { MsgpackWriter, fixstrBytes } from './msgpack-writer.ts';

const w = new MsgpackWriter();
const KEY_V = fixstrBytes('v');
const KEY_DOMAIN = fixstrBytes('domain');
const KEY_SEQ = fixstrBytes('seq');
const KEY_FACT_ID = fixstrBytes('factId');
const KEY_STATUS = fixstrBytes('status');
const KEY_SUPERSEDED = fixstrBytes('superseded');
const KEY_DUPLICATE = fixstrBytes('duplicate');
const TRUE = Uint8Array.of(0xc3);

/** The msgpack reply to a remember; throws what `rememberReply` throws (a rejected apply, a result without a fact). */
export function packRememberReply(domain: string, r: ApplyResult): Uint8Array {
  const status = rememberStatus(r);
  const factId = requireFactId(r);
  const superseded = r.supersededIds !== undefined && r.supersededIds.length > 0 ? r.supersededIds : undefined;
  const duplicate = r.duplicate ? true : false;
  return w.written(() => {
    w.mapHeader(5 + (superseded ? 1 : 0) + (duplicate ? 1 : 0));
    w.raw(KEY_V);
    w.num(1);
    w.raw(KEY_DOMAIN);
    w.str(domain);
    w.raw(KEY_SEQ);
    w.num(r.seq);
    w.raw(KEY_FACT_ID);
    w.str(factId);
    w.raw(KEY_STATUS);
    w.str(status);
    if (superseded) {
      w.raw(KEY_SUPERSEDED);
      w.arrayHeader(superseded.length);
      for (const id of superseded) w.str(id);
    }
    if (duplicate) {
      w.raw(KEY_DUPLICATE);
      w.raw(TRUE);
    }
  });
}
