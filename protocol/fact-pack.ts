/**
 * The msgpack bytes of a recall reply, written straight from the store's facts. The generic path — `toWireFact`
 * per fact, then msgpackr walking the objects it built — was a fifth of a recall's host CPU at 10k facts (and its
 * garbage). This writes the same fields in the same order with the same encodings msgpackr picks under
 * `codec.ts`'s options (maps as map16, minimal ints, other numbers as float64, minimal string headers), so the
 * bytes are identical to `encodePayload({ v: 1, domains, facts: facts.map(toWireFact), seqs }, 'msgpack')` — the
 * tests hold it to that. A replica read's reply adds `servedBy` and `staleMs` after `seqs`, as the generic path
 * would for `{ …, seqs, servedBy, staleMs }`.
 */
import type { FactObject, RecalledFact, Source } from '../shards/index.ts';
import { msToIso } from './convert.ts';

/** Fresh room is taken in chunks; a reply's bytes are a view into one and never written again. */
const CHUNK = 64 * 1024;

let buf = Buffer.allocUnsafe(CHUNK);
let pos = 0;

/** Who answered a replica read, and its staleness bound (ms). */
export interface PackedServed {
  readonly servedBy: string;
  readonly staleMs: number;
}

/** `{ v: 1, domains: [domain], facts, seqs: { [domain]: seq } }` (then `servedBy`, `staleMs` when given) as msgpack. */
export function packRecallReply(domain: string, facts: readonly RecalledFact[], seq: number, served?: PackedServed): Uint8Array {
  // A retry after running out of room (a reply larger than what was left of the chunk) starts in a fresh one.
  for (let size = CHUNK; ; size *= 2) {
    const start = pos;
    try {
      mapHeader(served === undefined ? 4 : 6);
      str('v');
      num(1);
      str('domains');
      buf[pos++] = 0x91;
      str(domain);
      str('facts');
      arrayHeader(facts.length);
      for (const f of facts) fact(f);
      str('seqs');
      mapHeader(1);
      str(domain);
      num(seq);
      if (served !== undefined) {
        str('servedBy');
        str(served.servedBy);
        str('staleMs');
        num(served.staleMs);
      }
      return buf.subarray(start, pos);
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
      buf = Buffer.allocUnsafe(Math.max(size, CHUNK));
      pos = 0;
    }
  }
}

/** One fact in `toWireFact`'s field order, optional fields only when present. */
function fact(f: RecalledFact): void {
  const optional =
    (f.subject !== undefined ? 1 : 0) +
    (f.predicate !== undefined ? 1 : 0) +
    (f.object !== undefined ? 1 : 0) +
    (f.validTo !== undefined ? 1 : 0) +
    (f.invalidatedAt !== undefined ? 1 : 0);
  mapHeader(REQUIRED_FIELDS + optional);
  key(K_id);
  str(f.id);
  key(K_domain);
  str(f.domain);
  key(K_text);
  str(f.text);
  if (f.subject !== undefined) {
    key(K_subject);
    str(f.subject);
  }
  if (f.predicate !== undefined) {
    key(K_predicate);
    str(f.predicate);
  }
  if (f.object !== undefined) {
    key(K_object);
    object(f.object);
  }
  key(K_confidence);
  num(f.confidence);
  key(K_validFrom);
  iso(f.validFrom);
  if (f.validTo !== undefined) {
    key(K_validTo);
    iso(f.validTo);
  }
  key(K_observedAt);
  iso(f.observedAt);
  key(K_recordedAt);
  iso(f.recordedAt);
  if (f.invalidatedAt !== undefined) {
    key(K_invalidatedAt);
    iso(f.invalidatedAt);
  }
  key(K_reinforcedAt);
  iso(f.reinforcedAt);
  key(K_confirmations);
  num(f.confirmations);
  key(K_status);
  str(f.status);
  key(K_source);
  source(f.source);
  key(K_effectiveConfidence);
  num(f.effectiveConfidence);
  key(K_score);
  num(f.score);
}

/** id, domain, text, confidence, validFrom, observedAt, recordedAt, reinforcedAt, confirmations, status, source, effectiveConfidence, score. */
const REQUIRED_FIELDS = 13;

function source(s: Source): void {
  mapHeader(1 + (s.task !== undefined ? 1 : 0) + (s.node !== undefined ? 1 : 0));
  key(K_agent);
  str(s.agent);
  if (s.task !== undefined) {
    key(K_task);
    str(s.task);
  }
  if (s.node !== undefined) {
    key(K_node);
    str(s.node);
  }
}

function object(o: FactObject): void {
  if (typeof o === 'string') return str(o);
  mapHeader(1);
  key(K_entity);
  str(o.entity);
}

/** A field name's msgpack bytes (fixstr header + ASCII), encoded once. */
function keyBytes(name: string): Uint8Array {
  return Uint8Array.of(0xa0 | name.length, ...Array.from(name, (c) => c.charCodeAt(0)));
}

const K_id = keyBytes('id');
const K_domain = keyBytes('domain');
const K_text = keyBytes('text');
const K_subject = keyBytes('subject');
const K_predicate = keyBytes('predicate');
const K_object = keyBytes('object');
const K_confidence = keyBytes('confidence');
const K_validFrom = keyBytes('validFrom');
const K_validTo = keyBytes('validTo');
const K_observedAt = keyBytes('observedAt');
const K_recordedAt = keyBytes('recordedAt');
const K_invalidatedAt = keyBytes('invalidatedAt');
const K_reinforcedAt = keyBytes('reinforcedAt');
const K_confirmations = keyBytes('confirmations');
const K_status = keyBytes('status');
const K_source = keyBytes('source');
const K_effectiveConfidence = keyBytes('effectiveConfidence');
const K_score = keyBytes('score');
const K_agent = keyBytes('agent');
const K_task = keyBytes('task');
const K_node = keyBytes('node');
const K_entity = keyBytes('entity');

function key(bytes: Uint8Array): void {
  need(bytes.length);
  for (let i = 0; i < bytes.length; i++) buf[pos + i] = bytes[i]!;
  pos += bytes.length;
}

/**
 * A timestamp as its ISO string's msgpack bytes. A fact's timestamps are mostly equal and the same facts come
 * back recall after recall, so the bytes are kept (cleared when full, like `msToIso`'s strings).
 */
const isoBytes = new Map<number, Uint8Array>();
const ISO_BYTES_MAX = 8192;

let lastMs = NaN;
let lastIso: Uint8Array = new Uint8Array(0);

function iso(ms: number): void {
  // Most often the same instant as the timestamp just written (a fact's observed, valid-from, recorded and
  // reinforced times start out equal): no lookup then.
  if (ms !== lastMs) {
    let bytes = isoBytes.get(ms);
    if (bytes === undefined) {
      const text = msToIso(ms);
      bytes = Uint8Array.of(0xa0 | text.length, ...Array.from(text, (c) => c.charCodeAt(0)));
      if (isoBytes.size >= ISO_BYTES_MAX) isoBytes.clear();
      isoBytes.set(ms, bytes);
    }
    lastMs = ms;
    lastIso = bytes;
  }
  key(lastIso);
}

function mapHeader(n: number): void {
  need(3);
  buf[pos++] = 0xde;
  buf[pos++] = n >> 8;
  buf[pos++] = n & 0xff;
}

function arrayHeader(n: number): void {
  need(5);
  if (n < 0x10) buf[pos++] = 0x90 | n;
  else if (n < 0x10000) {
    buf[pos++] = 0xdc;
    buf[pos++] = n >> 8;
    buf[pos++] = n & 0xff;
  } else {
    buf[pos++] = 0xdd;
    buf.writeUInt32BE(n, pos);
    pos += 4;
  }
}

/** msgpackr's choice: a 32-bit integer as the smallest int, anything else as float64. */
function num(n: number): void {
  need(9);
  if (n >>> 0 === n) {
    if (n < 0x80) buf[pos++] = n;
    else if (n < 0x100) {
      buf[pos++] = 0xcc;
      buf[pos++] = n;
    } else if (n < 0x10000) {
      buf[pos++] = 0xcd;
      buf[pos++] = n >> 8;
      buf[pos++] = n & 0xff;
    } else {
      buf[pos++] = 0xce;
      buf.writeUInt32BE(n, pos);
      pos += 4;
    }
  } else if (n >> 0 === n) {
    if (n >= -0x20) buf[pos++] = 0x100 + n;
    else if (n >= -0x80) {
      buf[pos++] = 0xd0;
      buf[pos++] = n + 0x100;
    } else if (n >= -0x8000) {
      buf[pos++] = 0xd1;
      buf.writeInt16BE(n, pos);
      pos += 2;
    } else {
      buf[pos++] = 0xd2;
      buf.writeInt32BE(n, pos);
      pos += 4;
    }
  } else {
    buf[pos++] = 0xcb;
    buf.writeDoubleBE(n, pos);
    pos += 8;
  }
}

/** A string with the smallest header for its UTF-8 length; short ASCII strings byte by byte. */
function str(s: string): void {
  const length = s.length;
  if (length < 0x20) {
    need(1 + length);
    let ascii = true;
    for (let i = 0; i < length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) {
        ascii = false;
        break;
      }
      buf[pos + 1 + i] = c;
    }
    if (ascii) {
      buf[pos] = 0xa0 | length;
      pos += 1 + length;
      return;
    }
  }
  // Written once, after a header sized for the most bytes it can take (3 per UTF-16 unit); moved back when the
  // actual length needs a smaller header, as msgpackr does.
  const most = length * 3;
  const reserved = most < 0x20 ? 1 : most < 0x100 ? 2 : most < 0x10000 ? 3 : 5;
  need(reserved + most);
  const bytes = buf.write(s, pos + reserved, 'utf8');
  const header = bytes < 0x20 ? 1 : bytes < 0x100 ? 2 : bytes < 0x10000 ? 3 : 5;
  if (header !== reserved) buf.copyWithin(pos + header, pos + reserved, pos + reserved + bytes);
  if (header === 1) buf[pos] = 0xa0 | bytes;
  else if (header === 2) {
    buf[pos] = 0xd9;
    buf[pos + 1] = bytes;
  } else if (header === 3) {
    buf[pos] = 0xda;
    buf[pos + 1] = bytes >> 8;
    buf[pos + 2] = bytes & 0xff;
  } else {
    buf[pos] = 0xdb;
    buf.writeUInt32BE(bytes, pos + 1);
  }
  pos += header + bytes;
}

/** Throws RangeError when the chunk has no room for `n` more bytes; `packRecallReply` then starts a fresh one. */
function need(n: number): void {
  if (pos + n > buf.length) throw new RangeError('reply chunk full');
}
