/**
 * The bytes of a stored fact (format 2): a fixed 88-byte header of numbers, then the strings.
 *
 * Why not msgpack like the other records: a fact is written on every assert and read by every recall, and msgpackr's
 * generic path cost ~4 µs per fact to encode (a fifth of the load at the time). A fixed layout encodes with a few
 * typed-array stores into one reused buffer, and lets recall read the numbers it scores by (status, confidence,
 * times) straight from the bytes, building strings only for the facts it returns. The id and the domain are not
 * stored: the id is the key, and both follow from the domain and the creating sequence.
 *
 * | offset | field                                             |
 * |--------|---------------------------------------------------|
 * | 0      | u8 version (2)                                    |
 * | 1      | u8 status (see STATUSES)                          |
 * | 2      | u16 flags: which optional fields are present      |
 * | 4..60  | f64 confidence, halfLifeDays, observedAt, validFrom, recordedAt, reinforcedAt, seq |
 * | 60     | u32 confirmations                                 |
 * | 64..88 | f64 validTo, latestValidFrom, invalidatedAt (0 when absent) |
 * | 88     | strings, each u16 byte length + UTF-8: text, subject, predicate, object, agent, task, node (present ones) |
 *
 * All little-endian; equal facts give equal bytes on every machine.
 */
import { episodeIdFor, factIdFor } from './ids.ts';
import type { Mutable } from './records.ts';
import type { Fact, FactStatus, Source } from './types.ts';

const VERSION = 2;
const STATUSES: readonly FactStatus[] = ['active', 'superseded', 'retracted', 'forgotten'];
const STATUS_CODE: Readonly<Record<FactStatus, number>> = { active: 0, superseded: 1, retracted: 2, forgotten: 3 };

const HAS_SUBJECT = 1;
const HAS_PREDICATE = 2;
const OBJECT_LITERAL = 4;
const OBJECT_ENTITY = 8;
const HAS_VALID_TO = 16;
const HAS_LATEST_VALID_FROM = 32;
const HAS_INVALIDATED_AT = 64;
const HAS_TASK = 128;
const HAS_NODE = 256;
const HAS_EPISODE = 512;

const CONFIDENCE = 4;
const HALF_LIFE = 12;
const OBSERVED_AT = 20;
const VALID_FROM = 28;
const RECORDED_AT = 36;
const REINFORCED_AT = 44;
const SEQ = 52;
const CONFIRMATIONS = 60;
const VALID_TO = 64;
const LATEST_VALID_FROM = 72;
const INVALIDATED_AT = 80;
const STRINGS = 88;

/**
 * Node's Buffer has UTF-8 methods without `write`/`toString`'s argument juggling (msgpackr uses them too); the
 * types do not list them.
 */
type Utf8Buffer = Buffer & {
  utf8Write(s: string, offset: number): number;
  utf8Slice(start: number, end: number): string;
};

/** One buffer reused by every encode: the store copies the bytes into LMDB before the next encode. */
let scratch = Buffer.allocUnsafeSlow(64 * 1024) as Utf8Buffer;
/** Numbers go in through a DataView: inlined stores, where Buffer's write methods were a call each. */
let view = new DataView(scratch.buffer, scratch.byteOffset, scratch.byteLength);

/**
 * The fact's bytes. The returned view is only valid until the next `encodeFact` (the store puts it at once).
 */
export function encodeFact(f: Fact): Buffer {
  const n = normalized(f);
  const bound = encodedFactBound(n);
  if (bound > scratch.length) {
    scratch = Buffer.allocUnsafeSlow(Math.max(bound, scratch.length * 2)) as Utf8Buffer;
    view = new DataView(scratch.buffer, scratch.byteOffset, scratch.byteLength);
  }
  return scratch.subarray(0, encodeFactInto(n, scratch, view, 0));
}

/**
 * `encodeFact`'s facts (changes: decoded facts, whose shapes vary with the fields present, and copies with changes)
 * copied into one object of a fixed shape first. The encoder's property loads then see that shape and the applier's
 * draft of a new fact (`FactGroups.appendFact`): with every decoded shape as well, they went megamorphic (V8 then
 * looks each field up in its global property cache, for every new fact: ~0.1 µs a fact).
 */
const NORMAL: Mutable<Fact> = blankFact('');

/**
 * A fact with every field present, in the one order the encoder's loads expect: the applier's draft and `NORMAL`
 * are both made here, so they cannot drift into two shapes.
 */
export function blankFact(domain: string): Mutable<Fact> {
  return {
    id: '',
    domain,
    text: '',
    subject: undefined,
    predicate: undefined,
    object: undefined,
    confidence: 0,
    halfLifeDays: 0,
    observedAt: 0,
    validFrom: 0,
    validTo: undefined,
    latestValidFrom: undefined,
    recordedAt: 0,
    invalidatedAt: undefined,
    reinforcedAt: 0,
    confirmations: 0,
    source: { agent: '' },
    status: 'active',
    seq: 0,
    episodeId: undefined,
  };
}
const NORMAL_SOURCE: Mutable<Source> = { agent: '', task: undefined, node: undefined };

function normalized(f: Fact): Fact {
  const n = NORMAL;
  const s = NORMAL_SOURCE;
  n.text = f.text;
  n.subject = f.subject;
  n.predicate = f.predicate;
  n.object = f.object;
  n.confidence = f.confidence;
  n.halfLifeDays = f.halfLifeDays;
  n.observedAt = f.observedAt;
  n.validFrom = f.validFrom;
  n.validTo = f.validTo;
  n.latestValidFrom = f.latestValidFrom;
  n.recordedAt = f.recordedAt;
  n.invalidatedAt = f.invalidatedAt;
  n.reinforcedAt = f.reinforcedAt;
  n.confirmations = f.confirmations;
  s.agent = f.source.agent;
  s.task = f.source.task;
  s.node = f.source.node;
  n.source = s;
  n.status = f.status;
  n.seq = f.seq;
  n.episodeId = f.episodeId;
  return n;
}

/** At least the bytes `encodeFact` gives `f`: the header, and per string 2 length bytes plus at most 3 UTF-8 bytes per UTF-16 unit. */
export function encodedFactBound(f: Fact): number {
  const source = f.source;
  const o = f.object;
  const objectLength = o === undefined ? 0 : typeof o === 'string' ? o.length : o.entity.length;
  return STRINGS + 14 + 3 * (f.text.length + (f.subject?.length ?? 0) + (f.predicate?.length ?? 0) + objectLength + source.agent.length + (source.task?.length ?? 0) + (source.node?.length ?? 0));
}

/**
 * Writes `f`'s bytes (`encodeFact`'s) into `out` at `start`, through `v` (a DataView over exactly `out`'s bytes);
 * returns where they end. `out` must have `encodedFactBound(f)` bytes from `start`. The store's group of facts being
 * filled takes a new fact's record this way, in place: encoding into a scratch buffer and copying it into the group
 * cost a Buffer view and a ~170-byte copy per fact.
 */
export function encodeFactInto(f: Fact, out: Buffer, v: DataView, start: number): number {
  const source = f.source;
  const o = f.object;
  const objectText = o === undefined ? undefined : typeof o === 'string' ? o : o.entity;
  const b = out as Utf8Buffer;
  let flags = 0;
  if (f.subject !== undefined) flags |= HAS_SUBJECT;
  if (f.predicate !== undefined) flags |= HAS_PREDICATE;
  if (o !== undefined) flags |= typeof o === 'string' ? OBJECT_LITERAL : OBJECT_ENTITY;
  if (f.validTo !== undefined) flags |= HAS_VALID_TO;
  if (f.latestValidFrom !== undefined) flags |= HAS_LATEST_VALID_FROM;
  if (f.invalidatedAt !== undefined) flags |= HAS_INVALIDATED_AT;
  if (source.task !== undefined) flags |= HAS_TASK;
  if (source.node !== undefined) flags |= HAS_NODE;
  if (f.episodeId !== undefined) flags |= HAS_EPISODE;
  b[start] = VERSION;
  b[start + 1] = STATUS_CODE[f.status];
  v.setUint16(start + 2, flags, true);
  v.setFloat64(start + CONFIDENCE, f.confidence, true);
  v.setFloat64(start + HALF_LIFE, f.halfLifeDays, true);
  v.setFloat64(start + OBSERVED_AT, f.observedAt, true);
  v.setFloat64(start + VALID_FROM, f.validFrom, true);
  v.setFloat64(start + RECORDED_AT, f.recordedAt, true);
  v.setFloat64(start + REINFORCED_AT, f.reinforcedAt, true);
  v.setFloat64(start + SEQ, f.seq, true);
  v.setUint32(start + CONFIRMATIONS, f.confirmations, true);
  v.setFloat64(start + VALID_TO, f.validTo ?? 0, true);
  v.setFloat64(start + LATEST_VALID_FROM, f.latestValidFrom ?? 0, true);
  v.setFloat64(start + INVALIDATED_AT, f.invalidatedAt ?? 0, true);
  let at = writeString(b, start + STRINGS, f.text);
  if (f.subject !== undefined) at = writeString(b, at, f.subject);
  if (f.predicate !== undefined) at = writeString(b, at, f.predicate);
  if (objectText !== undefined) at = writeString(b, at, objectText);
  at = writeString(b, at, source.agent);
  if (source.task !== undefined) at = writeString(b, at, source.task);
  if (source.node !== undefined) at = writeString(b, at, source.node);
  return at;
}

function writeString(b: Utf8Buffer, at: number, s: string): number {
  // Short ASCII strings (most fields) are copied by hand: cheaper than the native UTF-8 call. The bytes are the same.
  if (s.length <= 128) {
    let i = 0;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 128) break;
      b[at + 2 + i] = c;
    }
    if (i === s.length) {
      b[at] = i;
      b[at + 1] = 0;
      return at + 2 + i;
    }
  }
  const n = b.utf8Write(s, at + 2);
  if (n > 0xffff) throw new RangeError(`fact field of ${n} bytes exceeds the record format`);
  b.writeUInt16LE(n, at);
  return at + 2 + n;
}

function asBuffer(bytes: Uint8Array): Utf8Buffer {
  return (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)) as Utf8Buffer;
}

/** The stored fact (the domain completes its id). */
export function decodeFact(bytes: Uint8Array, domain: string): Fact {
  const b = asBuffer(bytes);
  const flags = b.readUInt16LE(2);
  const seq = b.readDoubleLE(SEQ);
  let at = STRINGS;
  let n = b.readUInt16LE(at);
  const text = b.utf8Slice(at + 2, (at += 2 + n));
  let subject: string | undefined;
  let predicate: string | undefined;
  let object: string | undefined;
  if (flags & HAS_SUBJECT) {
    n = b.readUInt16LE(at);
    subject = b.utf8Slice(at + 2, (at += 2 + n));
  }
  if (flags & HAS_PREDICATE) {
    n = b.readUInt16LE(at);
    predicate = b.utf8Slice(at + 2, (at += 2 + n));
  }
  if (flags & (OBJECT_LITERAL | OBJECT_ENTITY)) {
    n = b.readUInt16LE(at);
    object = b.utf8Slice(at + 2, (at += 2 + n));
  }
  n = b.readUInt16LE(at);
  const agent = b.utf8Slice(at + 2, (at += 2 + n));
  let source: Source;
  let task: string | undefined;
  if (flags & HAS_TASK) {
    n = b.readUInt16LE(at);
    task = b.utf8Slice(at + 2, (at += 2 + n));
  }
  if (flags & HAS_NODE) {
    n = b.readUInt16LE(at);
    const node = b.utf8Slice(at + 2, (at += 2 + n));
    source = task === undefined ? { agent, node } : { agent, task, node };
  } else source = task === undefined ? { agent } : { agent, task };
  const id = factIdFor(domain, seq);
  // Optional fields are set only when present, in the order the Fact type lists them.
  const f: { -readonly [K in keyof Fact]: Fact[K] } = { id, domain, text } as Fact;
  if (subject !== undefined) f.subject = subject;
  if (predicate !== undefined) f.predicate = predicate;
  if (object !== undefined) f.object = flags & OBJECT_ENTITY ? { entity: object } : object;
  f.confidence = b.readDoubleLE(CONFIDENCE);
  f.halfLifeDays = b.readDoubleLE(HALF_LIFE);
  f.observedAt = b.readDoubleLE(OBSERVED_AT);
  f.validFrom = b.readDoubleLE(VALID_FROM);
  if (flags & HAS_VALID_TO) f.validTo = b.readDoubleLE(VALID_TO);
  if (flags & HAS_LATEST_VALID_FROM) f.latestValidFrom = b.readDoubleLE(LATEST_VALID_FROM);
  f.recordedAt = b.readDoubleLE(RECORDED_AT);
  if (flags & HAS_INVALIDATED_AT) f.invalidatedAt = b.readDoubleLE(INVALIDATED_AT);
  f.reinforcedAt = b.readDoubleLE(REINFORCED_AT);
  f.confirmations = b.readUInt32LE(CONFIRMATIONS);
  f.source = source;
  f.status = STATUSES[b[1]!]!;
  f.seq = seq;
  if (flags & HAS_EPISODE) f.episodeId = episodeIdFor(id, seq);
  return f;
}

/** The numbers recall scores a fact by, read from its bytes without building the fact (see `peekFact`). */
export interface FactNumbers {
  status: FactStatus;
  confidence: number;
  halfLifeDays: number;
  validFrom: number;
  /** undefined when absent, like the fact's own field. */
  validTo: number | undefined;
  recordedAt: number;
  invalidatedAt: number | undefined;
  reinforcedAt: number;
}

/** Fills `out` from a fact's bytes (which may be a longer reused buffer: only the header is read). */
export function peekFact(bytes: Buffer, out: FactNumbers): FactNumbers {
  const flags = bytes.readUInt16LE(2);
  out.status = STATUSES[bytes[1]!]!;
  out.confidence = bytes.readDoubleLE(CONFIDENCE);
  out.halfLifeDays = bytes.readDoubleLE(HALF_LIFE);
  out.validFrom = bytes.readDoubleLE(VALID_FROM);
  out.validTo = flags & HAS_VALID_TO ? bytes.readDoubleLE(VALID_TO) : undefined;
  out.recordedAt = bytes.readDoubleLE(RECORDED_AT);
  out.invalidatedAt = flags & HAS_INVALIDATED_AT ? bytes.readDoubleLE(INVALIDATED_AT) : undefined;
  out.reinforcedAt = bytes.readDoubleLE(REINFORCED_AT);
  return out;
}

/** How many bytes a fact's record takes (its bytes may sit in a longer reused buffer). */
export function factByteLength(bytes: Buffer): number {
  const flags = bytes.readUInt16LE(2);
  const strings =
    2 + // text, agent
    (flags & HAS_SUBJECT ? 1 : 0) +
    (flags & HAS_PREDICATE ? 1 : 0) +
    (flags & (OBJECT_LITERAL | OBJECT_ENTITY) ? 1 : 0) +
    (flags & HAS_TASK ? 1 : 0) +
    (flags & HAS_NODE ? 1 : 0);
  let at = STRINGS;
  for (let i = 0; i < strings; i++) at += 2 + bytes.readUInt16LE(at);
  return at;
}

/** What the write path files an active fact under (see `records.ts` `identityHash`), read from its bytes. */
export interface IdentityFields {
  active: boolean;
  subject: string | undefined;
  predicate: string | undefined;
  /** A literal object, or an entity id when `objectIsEntity`. */
  object: string | undefined;
  objectIsEntity: boolean;
  /** Only read when the fact has no object (the identity then uses the text). */
  text: string;
}

/**
 * Fills `out` from a fact's bytes without building the fact: opening a store rebuilds the write indexes from every
 * fact, and decoding whole facts (ids, sources, the text of facts that have an object) was most of that time.
 */
export function readIdentityFields(bytes: Uint8Array, out: IdentityFields): IdentityFields {
  const b = asBuffer(bytes);
  out.active = b[1] === STATUS_CODE.active;
  if (!out.active) return out;
  const flags = b.readUInt16LE(2);
  let at = STRINGS;
  let n = b.readUInt16LE(at);
  const hasObject = (flags & (OBJECT_LITERAL | OBJECT_ENTITY)) !== 0;
  out.text = hasObject ? '' : b.utf8Slice(at + 2, at + 2 + n);
  at += 2 + n;
  out.subject = undefined;
  out.predicate = undefined;
  out.object = undefined;
  if (flags & HAS_SUBJECT) {
    n = b.readUInt16LE(at);
    out.subject = b.utf8Slice(at + 2, (at += 2 + n));
  }
  if (flags & HAS_PREDICATE) {
    n = b.readUInt16LE(at);
    out.predicate = b.utf8Slice(at + 2, (at += 2 + n));
  }
  if (hasObject) {
    n = b.readUInt16LE(at);
    out.object = b.utf8Slice(at + 2, (at += 2 + n));
  }
  out.objectIsEntity = (flags & OBJECT_ENTITY) !== 0;
  return out;
}

/**
 * A fact's subject and predicate from its bytes, whatever its status (`readIdentityFields` reads active facts only):
 * opening a store files every fact's subject for recall (`fact-subjects.ts`).
 */
export function readSubjectFields(bytes: Uint8Array, out: IdentityFields): IdentityFields {
  const b = asBuffer(bytes);
  const flags = b.readUInt16LE(2);
  let at = STRINGS;
  at += 2 + b.readUInt16LE(at);
  out.subject = undefined;
  out.predicate = undefined;
  let n: number;
  if (flags & HAS_SUBJECT) {
    n = b.readUInt16LE(at);
    out.subject = b.utf8Slice(at + 2, (at += 2 + n));
  }
  if (flags & HAS_PREDICATE) {
    n = b.readUInt16LE(at);
    out.predicate = b.utf8Slice(at + 2, (at += 2 + n));
  }
  return out;
}

/** A fact's text from its bytes, without decoding the rest (`decodeFact(bytes).text`). */
export function readFactText(bytes: Uint8Array): string {
  const b = asBuffer(bytes);
  return b.utf8Slice(STRINGS + 2, STRINGS + 2 + b.readUInt16LE(STRINGS));
}

/** The creating sequence stored in a fact's bytes. */
export function factSeqOf(bytes: Uint8Array): number {
  return asBuffer(bytes).readDoubleLE(SEQ);
}

/** What the `one`-predicate rule reads of the standing value (see `conflict.ts`), from its bytes. */
export interface StandingNumbers {
  validFrom: number;
  latestValidFrom: number | undefined;
  validTo: number | undefined;
  recordedAt: number;
}

export function peekStanding(bytes: Uint8Array, out: StandingNumbers): StandingNumbers {
  const b = asBuffer(bytes);
  const flags = b.readUInt16LE(2);
  out.validFrom = b.readDoubleLE(VALID_FROM);
  out.latestValidFrom = flags & HAS_LATEST_VALID_FROM ? b.readDoubleLE(LATEST_VALID_FROM) : undefined;
  out.validTo = flags & HAS_VALID_TO ? b.readDoubleLE(VALID_TO) : undefined;
  out.recordedAt = b.readDoubleLE(RECORDED_AT);
  return out;
}

/** The fixed part of a record: version, status, flags and every number. A change never alters the strings after it. */
export const HEADER_BYTES = STRINGS;

/** `record` (a writable copy) with `header` (a changed copy's first HEADER_BYTES) put over its own: see `fact-changes.ts`. */
export function withHeader(record: Buffer, header: Uint8Array): Buffer {
  record.set(header.subarray(0, HEADER_BYTES), 0);
  return record;
}

let patched = Buffer.allocUnsafeSlow(4096);

/**
 * A fact's bytes with status `superseded`, `validTo` and `invalidatedAt` set: byte for byte what `encodeFact` gives
 * for the decoded fact with those changes (the layout is fixed, so the rest is copied), without decoding its
 * strings. The returned view is only valid until the next call.
 */
export function supersededBytes(bytes: Uint8Array, validTo: number, invalidatedAt: number): Buffer {
  const b = asBuffer(bytes);
  const length = factByteLength(b);
  if (length > patched.length) patched = Buffer.allocUnsafeSlow(Math.max(length, patched.length * 2));
  // Not `b.copy`: lmdb-js's reused read buffer overrides `length`, and copy then takes the whole buffer.
  patched.set(b.subarray(0, length), 0);
  patched[1] = STATUS_CODE.superseded;
  patched.writeUInt16LE(patched.readUInt16LE(2) | HAS_VALID_TO | HAS_INVALIDATED_AT, 2);
  patched.writeDoubleLE(validTo, VALID_TO);
  patched.writeDoubleLE(invalidatedAt, INVALIDATED_AT);
  return patched.subarray(0, length);
}
