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
import { MsgpackWriter, fixstrBytes } from './msgpack-writer.ts';

const w = new MsgpackWriter();

/** Who answered a replica read, and its staleness bound (ms). */
export interface PackedServed {
  readonly servedBy: string;
  readonly staleMs: number;
}

/**
 * `{ v: 1, domains: [domain], facts, seqs: { [domain]: seq } }` (then `servedBy`, `staleMs` when given, and
 * `partial: true` when the store's answer was cut) as msgpack.
 */
export function packRecallReply(domain: string, facts: readonly RecalledFact[], seq: number, served?: PackedServed, partial = false): Uint8Array {
  return w.written(() => {
    w.mapHeader(tailFields(served, partial) + 3);
    packReplyHead(w, domain);
    w.str('facts');
    w.arrayHeader(facts.length);
    for (const f of facts) fact(f);
    packReplyTail(w, domain, seq, served, partial);
  });
}

/** The fields `packReplyTail` writes: `seqs`, a replica's two, `partial` when true. */
export function tailFields(served: PackedServed | undefined, partial: boolean): number {
  return 1 + (served === undefined ? 0 : 2) + (partial ? 1 : 0);
}

/** The fields every one-shard recall reply starts with, whatever its layout: `v`, `domains: [domain]`. */
export function packReplyHead(w: MsgpackWriter, domain: string): void {
  w.str('v');
  w.num(1);
  w.str('domains');
  w.arrayHeader(1);
  w.str(domain);
}

/**
 * …and ends with: `seqs: { [domain]: seq }`, then a replica's `servedBy` and `staleMs`, then `partial: true` when the
 * store's answer was cut (only then: a complete reply keeps its bytes, and older readers ignore the field).
 */
export function packReplyTail(w: MsgpackWriter, domain: string, seq: number, served: PackedServed | undefined, partial = false): void {
  w.str('seqs');
  w.mapHeader(1);
  w.str(domain);
  w.num(seq);
  if (served !== undefined) {
    w.str('servedBy');
    w.str(served.servedBy);
    w.str('staleMs');
    w.num(served.staleMs);
  }
  if (partial) {
    w.str('partial');
    w.raw(MSGPACK_TRUE);
  }
}

const MSGPACK_TRUE = Uint8Array.of(0xc3);

/** One fact in `toWireFact`'s field order, optional fields only when present. */
function fact(f: RecalledFact): void {
  const optional =
    (f.subject !== undefined ? 1 : 0) +
    (f.predicate !== undefined ? 1 : 0) +
    (f.object !== undefined ? 1 : 0) +
    (f.validTo !== undefined ? 1 : 0) +
    (f.invalidatedAt !== undefined ? 1 : 0);
  w.mapHeader(REQUIRED_FIELDS + optional);
  w.raw(K_id);
  w.str(f.id);
  w.raw(K_domain);
  w.str(f.domain);
  w.raw(K_text);
  w.str(f.text);
  if (f.subject !== undefined) {
    w.raw(K_subject);
    w.str(f.subject);
  }
  if (f.predicate !== undefined) {
    w.raw(K_predicate);
    w.str(f.predicate);
  }
  if (f.object !== undefined) {
    w.raw(K_object);
    object(f.object);
  }
  w.raw(K_confidence);
  w.num(f.confidence);
  w.raw(K_validFrom);
  iso(f.validFrom);
  if (f.validTo !== undefined) {
    w.raw(K_validTo);
    iso(f.validTo);
  }
  w.raw(K_observedAt);
  iso(f.observedAt);
  w.raw(K_recordedAt);
  iso(f.recordedAt);
  if (f.invalidatedAt !== undefined) {
    w.raw(K_invalidatedAt);
    iso(f.invalidatedAt);
  }
  w.raw(K_reinforcedAt);
  iso(f.reinforcedAt);
  w.raw(K_confirmations);
  w.num(f.confirmations);
  w.raw(K_status);
  w.str(f.status);
  w.raw(K_source);
  source(f.source);
  w.raw(K_effectiveConfidence);
  w.num(f.effectiveConfidence);
  w.raw(K_score);
  w.num(f.score);
}

/** id, domain, text, confidence, validFrom, observedAt, recordedAt, reinforcedAt, confirmations, status, source, effectiveConfidence, score. */
const REQUIRED_FIELDS = 13;

function source(s: Source): void {
  w.mapHeader(1 + (s.task !== undefined ? 1 : 0) + (s.node !== undefined ? 1 : 0));
  w.raw(K_agent);
  w.str(s.agent);
  if (s.task !== undefined) {
    w.raw(K_task);
    w.str(s.task);
  }
  if (s.node !== undefined) {
    w.raw(K_node);
    w.str(s.node);
  }
}

function object(o: FactObject): void {
  if (typeof o === 'string') return w.str(o);
  w.mapHeader(1);
  w.raw(K_entity);
  w.str(o.entity);
}

const K_id = fixstrBytes('id');
const K_domain = fixstrBytes('domain');
const K_text = fixstrBytes('text');
const K_subject = fixstrBytes('subject');
const K_predicate = fixstrBytes('predicate');
const K_object = fixstrBytes('object');
const K_confidence = fixstrBytes('confidence');
const K_validFrom = fixstrBytes('validFrom');
const K_validTo = fixstrBytes('validTo');
const K_observedAt = fixstrBytes('observedAt');
const K_recordedAt = fixstrBytes('recordedAt');
const K_invalidatedAt = fixstrBytes('invalidatedAt');
const K_reinforcedAt = fixstrBytes('reinforcedAt');
const K_confirmations = fixstrBytes('confirmations');
const K_status = fixstrBytes('status');
const K_source = fixstrBytes('source');
const K_effectiveConfidence = fixstrBytes('effectiveConfidence');
const K_score = fixstrBytes('score');
const K_agent = fixstrBytes('agent');
const K_task = fixstrBytes('task');
const K_node = fixstrBytes('node');
const K_entity = fixstrBytes('entity');

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
      bytes = fixstrBytes(msToIso(ms));
      if (isoBytes.size >= ISO_BYTES_MAX) isoBytes.clear();
      isoBytes.set(ms, bytes);
    }
    lastMs = ms;
    lastIso = bytes;
  }
  w.raw(lastIso);
}
