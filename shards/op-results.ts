/**
 * Op results: what each applied op got, so a retried op (same opId) gets its first answer again, marked
 * `duplicate`.
 *
 * Why keyed by sequence: keyed by the client's opId, every write cost a random B-tree read (the dedupe check) and a
 * random insert, ~2.5 µs of a fact's load time. Here a result is appended (MDB_APPEND) at the sequence that applied
 * it, and which sequence holds an opId is an in-memory multimap from a 32-bit hash of the opId (`key-index.ts`),
 * rebuilt at open from the hash stored at the front of every record — derived data, so it cannot change the bytes
 * on disk. A hash hit is confirmed against the opId in the record: a collision costs a read, never a wrong answer.
 *
 * Record bytes (little-endian):
 * | offset | field                                                                                      |
 * |--------|--------------------------------------------------------------------------------------------|
 * | 0      | u32 hash of the opId (`hashString`)                                                        |
 * | 4      | u16 byte length n of the opId, then its UTF-8                                              |
 * | 6 + n  | u8 form: COMPACT (then u8 status: a fact created at this sequence, its id follows from it) |
 * |        | or TUPLE (then msgpack `[status, factId, supersededIds, errorCode, errorMessage]`, absent as null) |
 * The sequence is the key, and `duplicate` is never stored (only a repeat reports it).
 */
import { decodeValue, encodeValue } from './codec.ts';
import { factIdFor } from './ids.ts';
import { hashString, KeyIndex } from './key-index.ts';
import type { OpTable } from './tables.ts';
import type { ApplyResult } from './types.ts';

const STATUS_CODES: readonly ApplyResult['status'][] = ['created', 'reinforced', 'superseded_previous', 'recorded_superseded', 'retracted', 'forgotten', 'entity', 'marker', 'rejected'];
const COMPACT = 0;
const TUPLE = 1;
const OPID = 4;
const APPEND = { append: true } as const;

type ResultTuple = [ApplyResult['status'], string | null, readonly string[] | null, 'NOT_FOUND' | 'BAD_REQUEST' | null, string | null];
type Utf8Buffer = Buffer & { utf8Write(s: string, offset: number): number; utf8Slice(start: number, end: number): string };

/** One buffer reused by every encode: LMDB copies the bytes at the put. */
let scratch = Buffer.allocUnsafeSlow(4096) as Utf8Buffer;

export class OpResults {
  private readonly bySeq = new KeyIndex();

  constructor(
    private readonly table: OpTable,
    private readonly domain: string,
  ) {}

  /** The result the op `opId` got when first applied, or undefined. */
  find(opId: string): ApplyResult | undefined {
    const hash = hashString(opId);
    if (!this.bySeq.has(hash)) return undefined; // a new op, nearly always
    let found: ApplyResult | undefined;
    this.bySeq.find(hash, (seq) => {
      const bytes = this.table.getBinaryFast(seq);
      if (bytes === undefined || !sameOpId(bytes, opId)) return false;
      found = decode(bytes, seq, opId, this.domain);
      return true;
    });
    return found;
  }

  /**
   * Stores `result` (of the op `opId`, applied at `result.seq`, above every stored sequence). `createdHere`: its
   * factId is the fact this op created (`factIdFor(domain, seq)`), which the record then leaves out.
   */
  record(opId: string, result: ApplyResult, createdHere: boolean): void {
    const hash = hashString(opId);
    const appended: unknown = this.table.putSync(result.seq, encode(hash, opId, result, createdHere), APPEND);
    if (appended === false) throw new Error(`op result at ${result.seq} is not above the stored ones`);
    this.bySeq.add(hash, result.seq);
  }

  /** Rebuilds the opId index from the stored records (at open, and after a failed batch). */
  rebuild(): void {
    this.bySeq.clear();
    for (const { key, value } of this.table.getRange({})) this.bySeq.add(value.readInt32LE(0), key);
  }
}

function encode(hash: number, opId: string, r: ApplyResult, createdHere: boolean): Buffer {
  const compact = createdHere && r.error === undefined && r.supersededIds === undefined;
  const tuple = compact ? undefined : encodeValue([r.status, r.factId ?? null, r.supersededIds ?? null, r.error?.code ?? null, r.error?.message ?? null] satisfies ResultTuple);
  const bound = OPID + 2 + 3 * opId.length + 2 + (tuple?.length ?? 0);
  if (bound > scratch.length) scratch = Buffer.allocUnsafeSlow(Math.max(bound, scratch.length * 2)) as Utf8Buffer;
  const b = scratch;
  b.writeInt32LE(hash, 0);
  const n = writeUtf8(b, OPID + 2, opId);
  if (n > 0xffff) throw new RangeError(`opId of ${n} bytes exceeds the record format`);
  b.writeUInt16LE(n, OPID);
  let at = OPID + 2 + n;
  if (tuple === undefined) {
    b[at++] = COMPACT;
    b[at++] = STATUS_CODES.indexOf(r.status);
  } else {
    b[at++] = TUPLE;
    tuple.copy(b, at);
    at += tuple.length;
  }
  return b.subarray(0, at);
}

/** UTF-8 of `s` at `at`: ASCII (nearly every opId) copied by hand, cheaper than the native call; same bytes. */
function writeUtf8(b: Utf8Buffer, at: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128) return b.utf8Write(s, at);
    b[at + i] = c;
  }
  return s.length;
}

function asBuffer(bytes: Uint8Array): Utf8Buffer {
  return (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)) as Utf8Buffer;
}

function sameOpId(bytes: Uint8Array, opId: string): boolean {
  const b = asBuffer(bytes);
  const n = b.readUInt16LE(OPID);
  return b.utf8Slice(OPID + 2, OPID + 2 + n) === opId;
}

function decode(bytes: Uint8Array, seq: number, opId: string, domain: string): ApplyResult {
  const b = asBuffer(bytes);
  const at = OPID + 2 + b.readUInt16LE(OPID);
  if (b[at] === COMPACT) return { seq, opId, status: STATUS_CODES[b[at + 1]!]!, factId: factIdFor(domain, seq) };
  const t = decodeValue<ResultTuple>(b.subarray(at + 1));
  return {
    seq,
    opId,
    status: t[0],
    ...(t[1] !== null && { factId: t[1] }),
    ...(t[2] !== null && { supersededIds: t[2] }),
    ...(t[3] !== null && { error: { code: t[3], message: t[4] ?? '' } }),
  };
}
