/**
 * How fact records sit in the `facts` table: the records of FACT_GROUP consecutive store positions share one LMDB
 * value, keyed by `position / FACT_GROUP`, built in memory as facts are created and put once per batch.
 *
 * Why: a record per key cost one lmdb-js put per new fact, ~1 µs of the load's CPU per fact even as an append (the
 * put's JS and native work, not the bytes); a group of 16 is one put per 16 facts (0.6–0.7 → 0.16 µs per fact in
 * isolation, commit included). Reading a fact is still one lookup: the group's directory says where its record is.
 * The price: a read copies the group (~3.5 KB, ~0.1 µs) where it copied one record, and forgetting rewrites a group.
 *
 * A group's bytes: FACT_GROUP u32 (little-endian) end offsets, slot by slot, relative to the records that follow
 * them (a slot with no fact ends where the one before it does), then the records (`fact-codec.ts`) in slot order.
 * The bytes depend only on the facts, not on how the log was cut into batches: a group put before its last fact
 * arrived is put again, whole, by a later batch.
 *
 * The group being filled lives here between batches, as the op results' does (`op-results.ts`); the applier reads
 * its own facts through it (`read`), readers only what is stored (`stored`), since they may be a commit behind.
 */
import type { Fact } from './types.ts';
import { encodedFactBound, encodeFactInto } from './fact-codec.ts';
import type { FactTable } from './tables.ts';

/** Positions per group. */
export const FACT_GROUP = 16;
const DIRECTORY = FACT_GROUP * 4;
const APPEND = { append: true } as const;

export class FactGroups {
  /** The group being filled (-1: none), its bytes so far, whether it is stored at all and whether as it is now. */
  private group = -1;
  private bytes = Buffer.allocUnsafeSlow(64 * 1024);
  /** Over `bytes`: a new fact is encoded straight into the group (`appendFact`). */
  private view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
  private length = DIRECTORY;
  /** Where the record `appendFact` filed last starts in `bytes` (`newest`). */
  private newestStart = 0;
  private inTable = false;
  private dirty = false;

  constructor(private readonly table: FactTable) {}

  /** Forgets the group in memory (at open, and after a failed batch): it is read again from the table. */
  reset(): void {
    this.group = -1;
    this.length = DIRECTORY;
    this.inTable = false;
    this.dirty = false;
  }

  /**
   * Files a new fact's record (`encodeFact`'s bytes) at its position, above every stored fact; stored by the next
   * `flush`. Encoded straight into the group: a scratch buffer, a view of it and a copy per fact cost ~0.3 µs.
   * `newest` answers the record until the group next changes.
   */
  appendFact(f: Fact): void {
    const start = this.slotStart(f.seq, encodedFactBound(f));
    const end = encodeFactInto(f, this.bytes, this.view, this.length);
    this.filed(f.seq, start, end - this.length);
  }

  /** The record `appendFact` filed last: a view, valid until the group changes. */
  newest(): Buffer {
    return this.bytes.subarray(this.newestStart, this.length);
  }

  /** Starts filing a record of at most `bound` bytes at `seq`: where it starts, relative to the records. */
  private slotStart(seq: number, bound: number): number {
    const group = Math.floor(seq / FACT_GROUP);
    if (group !== this.group) this.startGroup(group);
    const slot = seq - group * FACT_GROUP;
    const start = this.length - DIRECTORY;
    // The slots before this one must end where the records do: none at or after it is filled.
    if ((slot === 0 ? 0 : this.view.getUint32((slot - 1) * 4, true)) !== start) throw new Error(`fact ${seq} is not above the stored facts`);
    if (this.length + bound > this.bytes.length) this.grow(this.length + bound);
    return start;
  }

  /** The record of `length` bytes at `seq` is in place after the others: the directory follows. */
  private filed(seq: number, start: number, length: number): void {
    const slot = seq - this.group * FACT_GROUP;
    this.newestStart = this.length;
    this.length += length;
    // Through the DataView (inlined stores): Buffer's writeUInt32LE was a call each, ~8 a fact.
    for (let s = slot; s < FACT_GROUP; s++) this.view.setUint32(s * 4, start + length, true);
    this.dirty = true;
  }

  /** Puts the group being filled if it changed: at the end of every batch (and before a scan), inside its transaction. */
  flush(): void {
    if (!this.dirty) return;
    const value = this.bytes.subarray(0, this.length);
    if (this.inTable) this.table.putSync(this.group, value);
    else {
      // lmdb-js answers false (its types say void) when the key is not above the last one: never drop facts.
      const appended: unknown = this.table.putSync(this.group, value, APPEND);
      if (appended === false) throw new Error(`facts of group ${this.group} are not above the stored ones`);
      this.inTable = true;
    }
    this.dirty = false;
  }

  /** The applier's read: the record of the fact created at `seq`, including facts not yet flushed. Valid until the next read. */
  read(seq: number): Buffer | undefined {
    const group = Math.floor(seq / FACT_GROUP);
    return group === this.group ? slotOf(this.bytes.subarray(0, this.length), seq - group * FACT_GROUP) : this.stored(seq);
  }

  /** A reader's read: the stored record of the fact at `seq` in this transaction's snapshot. Valid until the next read. */
  stored(seq: number): Buffer | undefined {
    const group = Math.floor(seq / FACT_GROUP);
    const bytes = this.table.getBinaryFast(group);
    return bytes === undefined ? undefined : slotOf(bytes, seq - group * FACT_GROUP);
  }

  /** Replaces the record of the fact at `seq` (forgetting: its text goes). */
  rewrite(seq: number, record: Buffer): void {
    const group = Math.floor(seq / FACT_GROUP);
    const slot = seq - group * FACT_GROUP;
    if (group === this.group) {
      const next = withSlot(this.bytes.subarray(0, this.length), slot, record);
      if (next.length > this.bytes.length) this.grow(next.length);
      next.copy(this.bytes, 0);
      this.length = next.length;
      this.dirty = true;
      return;
    }
    const stored = this.table.getBinary(group);
    if (stored === undefined) throw new Error(`no stored fact ${seq} to rewrite`);
    this.table.putSync(group, withSlot(stored, slot, record));
  }

  /**
   * The stored facts at positions [start, end) in position order, as [position, record] (each record valid until
   * the iteration moves on). Flush first when the applier scans its own facts.
   */
  *entries(start = 0, end = Number.MAX_SAFE_INTEGER): Generator<[number, Buffer]> {
    const first = Math.floor(start / FACT_GROUP);
    for (const { key, value: stored } of this.table.getRange({ start: first, end: Math.floor((end - 1) / FACT_GROUP) + 1 })) {
      // A copy: the caller's reads between two of this group's facts may reuse the buffer the range read it into.
      const value = Buffer.from(stored);
      for (let slot = 0; slot < FACT_GROUP; slot++) {
        const seq = key * FACT_GROUP + slot;
        if (seq < start || seq >= end) continue;
        const record = slotOf(value, slot);
        if (record !== undefined) yield [seq, record];
      }
    }
  }

  private startGroup(group: number): void {
    this.flush();
    // Facts are appended in order: a group above the one just filled is not stored yet (no lookup).
    const stored = this.group >= 0 && group > this.group ? undefined : this.table.getBinary(group);
    this.group = group;
    this.inTable = stored !== undefined;
    this.length = DIRECTORY;
    this.bytes.fill(0, 0, DIRECTORY);
    if (stored !== undefined) {
      if (stored.length > this.bytes.length) this.grow(stored.length);
      stored.copy(this.bytes, 0);
      this.length = stored.length;
    }
  }

  private grow(size: number): void {
    const grown = Buffer.allocUnsafeSlow(Math.max(size, this.bytes.length * 2));
    this.bytes.copy(grown, 0, 0, this.length);
    this.bytes = grown;
    this.view = new DataView(grown.buffer, grown.byteOffset, grown.byteLength);
  }
}

/** The record in `slot` of a group's bytes, or undefined when the slot holds no fact. */
function slotOf(group: Buffer, slot: number): Buffer | undefined {
  const start = slot === 0 ? 0 : group.readUInt32LE((slot - 1) * 4);
  const end = group.readUInt32LE(slot * 4);
  return end === start ? undefined : group.subarray(DIRECTORY + start, DIRECTORY + end);
}

/** A group's bytes with the record in `slot` replaced (the records after it move, the directory follows). */
function withSlot(group: Buffer, slot: number, record: Buffer): Buffer {
  const start = slot === 0 ? 0 : group.readUInt32LE((slot - 1) * 4);
  const end = group.readUInt32LE(slot * 4);
  const total = group.readUInt32LE((FACT_GROUP - 1) * 4);
  const shift = record.length - (end - start);
  const out = Buffer.alloc(DIRECTORY + total + shift);
  for (let s = 0; s < FACT_GROUP; s++) {
    const e = group.readUInt32LE(s * 4);
    out.writeUInt32LE(s < slot ? e : e + shift, s * 4);
  }
  group.copy(out, DIRECTORY, DIRECTORY, DIRECTORY + start);
  record.copy(out, DIRECTORY + start);
  group.copy(out, DIRECTORY + start + record.length, DIRECTORY + end, DIRECTORY + total);
  return out;
}
