/**
 * Op results: what each applied op got, so a retried op (same opId) gets its first answer again, marked
 * `duplicate`. Ops are filed by store position (`apply.ts`); a result reports the log sequence of its message, which
 * trails the position by the store's offset once the log held batches, so an entry stores that difference when it
 * is not 0.
 *
 * Why grouped by position: keyed by the client's opId, every write cost a random B-tree read (the dedupe check) and
 * a random insert, ~2.5 µs of a fact's load time; keyed by position and appended, still a put (~0.5 µs) per op.
 * Here the results of GROUP consecutive positions share one record, keyed by `position / GROUP` and built in memory: a
 * batch puts each group it touched once, at its end (`flush`), the first time as an append. A group's bytes are its
 * entries in position order however the log was batched. Which position holds an opId is an in-memory multimap from
 * a 32-bit hash of the opId (`key-index.ts`), rebuilt at open from the hashes stored in the entries — derived data,
 * so it cannot change the bytes on disk. A hash hit is confirmed against the opId in the entry: a collision costs a
 * read, never a wrong answer.
 *
 * Entry bytes (little-endian), one after another in a group:
 * | field                                                                                             |
 * |---------------------------------------------------------------------------------------------------|
 * | u8 position % GROUP, u32 hash of the opId (`hashString`), u16 byte length n of the opId, its UTF-8      |
 * | u8 form: COMPACT then u8 status (a fact created at this position: its id follows from it), or      |
 * | TUPLE then u16 length and msgpack `[status, factId, supersededIds, errorCode, errorMessage]`       |
 * | (form | SHIFTED: the same, preceded by u48 position − log sequence)                               |
 * `duplicate` is never stored (only a repeat reports it).
 */
import { decodeValue, encodeValue } from './codec.ts';
import { factIdFor } from './ids.ts';
import { hashString, KeyIndex } from './key-index.ts';
import type { OpTable } from './tables.ts';
import type { ApplyResult } from './types.ts';

// Append only: a record's code is its index here.
const STATUS_CODES: readonly ApplyResult['status'][] = ['created', 'reinforced', 'superseded_previous', 'recorded_superseded', 'retracted', 'forgotten', 'entity', 'marker', 'rejected', 'pruned'];
const COMPACT = 0;
const TUPLE = 1;
/** Flag on the form byte: the entry's log sequence is its position minus the u48 after the form byte. */
const SHIFTED = 2;
/** Positions per record. */
export const GROUP = 64;
const APPEND = { append: true } as const;

type ResultTuple = [ApplyResult['status'], string | null, readonly string[] | null, 'NOT_FOUND' | 'BAD_REQUEST' | null, string | null];
type Utf8Buffer = Buffer & { utf8Write(s: string, offset: number): number; utf8Slice(start: number, end: number): string };

export class OpResults {
  private readonly bySeq = new KeyIndex();
  /** The group being filled (-1: none) and its bytes so far, stored (`stored`) and flushed unless `dirty`. */
  private group = -1;
  private bytes = Buffer.allocUnsafeSlow(4096) as Utf8Buffer;
  private length = 0;
  private stored = false;
  private dirty = false;

  constructor(
    private readonly table: OpTable,
    private readonly domain: string,
  ) {}

  /** The opId `find` hashed last and its hash: `record` of the same op (the applier's next call) reuses it. */
  private lastOpId = '';
  private lastHash = 0;

  /** The result the op `opId` got when first applied, or undefined. `hash`: its `hashString`, when already known. */
  find(opId: string, hash = hashString(opId)): ApplyResult | undefined {
    this.lastOpId = opId;
    this.lastHash = hash;
    if (!this.bySeq.has(hash)) return undefined; // a new op, nearly always
    let found: ApplyResult | undefined;
    this.bySeq.find(hash, (pos) => {
      const group = Math.floor(pos / GROUP);
      const bytes = group === this.group ? this.bytes.subarray(0, this.length) : this.table.getBinary(group);
      if (bytes === undefined) return false;
      found = findEntry(bytes, pos - group * GROUP, opId, pos, this.domain);
      return found !== undefined;
    });
    return found;
  }

  /** Loads the index slot where `find` will look for an opId of this hash (see `KeyIndex.touch`). */
  touch(hash: number): number {
    return this.bySeq.touch(hash);
  }

  /**
   * Records `result` of the op `opId`, applied at store position `pos` (above every recorded one; `result.seq` is
   * the log sequence, at most `pos`). `createdHere`: its factId is the fact this op created (`factIdFor(domain,
   * pos)`), which the entry then leaves out. Stored by the next `flush`.
   */
  record(opId: string, result: ApplyResult, pos: number, createdHere: boolean): void {
    const group = Math.floor(pos / GROUP);
    if (group !== this.group) this.startGroup(group);
    const hash = opId === this.lastOpId ? this.lastHash : hashString(opId);
    const shift = pos - result.seq;
    const compact = createdHere && result.error === undefined && result.supersededIds === undefined;
    const tuple = compact ? undefined : encodeValue([result.status, result.factId ?? null, result.supersededIds ?? null, result.error?.code ?? null, result.error?.message ?? null] satisfies ResultTuple);
    if (tuple !== undefined && tuple.length > 0xffff) throw new RangeError(`op result of ${tuple.length} bytes exceeds the record format`);
    this.reserve(1 + 4 + 2 + 3 * opId.length + 1 + 6 + 2 + (tuple?.length ?? 1));
    const b = this.bytes;
    let at = this.length;
    b[at++] = pos - group * GROUP;
    b.writeInt32LE(hash, at);
    at += 4;
    const n = writeUtf8(b, at + 2, opId);
    if (n > 0xffff) throw new RangeError(`opId of ${n} bytes exceeds the record format`);
    b.writeUInt16LE(n, at);
    at += 2 + n;
    b[at++] = (tuple === undefined ? COMPACT : TUPLE) | (shift !== 0 ? SHIFTED : 0);
    if (shift !== 0) {
      b.writeUIntLE(shift, at, 6);
      at += 6;
    }
    if (tuple === undefined) b[at++] = STATUS_CODES.indexOf(result.status);
    else {
      b.writeUInt16LE(tuple.length, at);
      tuple.copy(b, at + 2);
      at += 2 + tuple.length;
    }
    this.length = at;
    this.dirty = true;
    this.bySeq.add(hash, pos);
  }

  /** Puts the group being filled, if it changed: at the end of every batch, inside its transaction. */
  flush(): void {
    if (!this.dirty) return;
    const value = this.bytes.subarray(0, this.length);
    if (this.stored) this.table.putSync(this.group, value);
    else {
      // lmdb-js answers false (its types say void) when the key is not above the last one: never drop results.
      const appended: unknown = this.table.putSync(this.group, value, APPEND);
      if (appended === false) throw new Error(`op results of group ${this.group} are not above the stored ones`);
      this.stored = true;
    }
    this.dirty = false;
  }

  /** Rebuilds the opId index from the stored records (at open, and after a failed batch). */
  rebuild(): void {
    this.bySeq.clear();
    this.group = -1;
    this.length = 0;
    this.stored = false;
    this.dirty = false;
    for (const { key, value } of this.table.getRange({})) {
      for (let at = 0; at < value.length; at = entryEnd(value, at)) this.bySeq.add(value.readInt32LE(at + 1), key * GROUP + value[at]!);
    }
  }

  private startGroup(group: number): void {
    this.flush();
    // Groups fill in order: one above the group just filled is not stored yet (no lookup).
    const stored = this.group >= 0 && group > this.group ? undefined : this.table.getBinary(group);
    this.group = group;
    this.stored = stored !== undefined;
    this.length = 0;
    if (stored !== undefined) {
      this.reserve(stored.length);
      this.bytes.set(stored, 0);
      this.length = stored.length;
    }
  }

  private reserve(more: number): void {
    if (this.length + more <= this.bytes.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(this.length + more, this.bytes.length * 2)) as Utf8Buffer;
    this.bytes.copy(grown, 0, 0, this.length);
    this.bytes = grown;
  }
}

/** Where the entry starting at `at` ends. */
function entryEnd(b: Buffer, at: number): number {
  const formAt = at + 7 + b.readUInt16LE(at + 5);
  const form = b[formAt]!;
  const body = formAt + 1 + ((form & SHIFTED) !== 0 ? 6 : 0);
  return (form & TUPLE) === 0 ? body + 1 : body + 2 + b.readUInt16LE(body);
}

/** The result in a group's entry for `slot` (store position `pos`), if its opId is `opId`. */
function findEntry(bytes: Uint8Array, slot: number, opId: string, pos: number, domain: string): ApplyResult | undefined {
  const b = asBuffer(bytes);
  for (let at = 0; at < b.length; at = entryEnd(b, at)) {
    if (b[at] !== slot) continue;
    const n = b.readUInt16LE(at + 5);
    if (b.utf8Slice(at + 7, at + 7 + n) !== opId) return undefined;
    const formAt = at + 7 + n;
    const form = b[formAt]!;
    const shifted = (form & SHIFTED) !== 0;
    const seq = shifted ? pos - b.readUIntLE(formAt + 1, 6) : pos;
    const body = formAt + 1 + (shifted ? 6 : 0);
    if ((form & TUPLE) === 0) return { seq, opId, status: STATUS_CODES[b[body]!]!, factId: factIdFor(domain, pos) };
    const t = decodeValue<ResultTuple>(b.subarray(body + 2, body + 2 + b.readUInt16LE(body)));
    return {
      seq,
      opId,
      status: t[0],
      ...(t[1] !== null && { factId: t[1] }),
      ...(t[2] !== null && { supersededIds: t[2] }),
      ...(t[3] !== null && { error: { code: t[3], message: t[4] ?? '' } }),
    };
  }
  return undefined;
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
