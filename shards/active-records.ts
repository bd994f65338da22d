/**
 * The records of the active values of `one` predicates, kept in memory for the applier: a new fact on a `one`
 * (subject, predicate) reads the value it may supersede, and that read was a random group of the `facts` table —
 * at 1M facts ~2 µs each (a cold B-tree path and a 3.7 KB group copied), ~0.35 µs of every fact's load at 17% of
 * facts. Here it is a lookup and a copy of one record.
 *
 * What is kept is exactly what `FactChanges.read` answers for that position: the record as first written with the
 * header (`fact-codec.ts`: numbers and flags, the first HEADER_BYTES) of its newest change over it. The applier keeps
 * a record when its fact becomes the active value, puts every change's header over it (`change`, from the one
 * place changes are made), and drops it when the fact stops being the active value (superseded, retracted,
 * forgotten); a position not kept is read from the store as before. Derived data, never stored: cleared and refilled
 * from the facts whenever the write indexes are rebuilt (open, a failed batch), so it cannot change the bytes on disk.
 *
 * Layout: fixed slots of SLOT_BYTES in one buffer (no object per record for the garbage collector to trace or
 * promote), a slot's record length beside it, free slots on a stack, and the slot of each position in a `KeyIndex`
 * keyed by the position. A record longer than a slot (a text of more than ~400 bytes) is not kept, and neither is
 * anything past MAX_SLOTS records (64 MiB): those are read from the store.
 */
import { HEADER_BYTES } from './fact-codec.ts';
import { KeyIndex } from './key-index.ts';

const SLOT_BYTES = 512;
const MAX_SLOTS = (64 * 1024 * 1024) / SLOT_BYTES;
const FIRST_SLOTS = 1024;

/** `KeyIndex.find`'s visitor taking the first entry: a position has one slot. */
const FIRST = (): boolean => true;

export class ActiveRecords {
  /** Fact position → its slot + 1 (a KeyIndex sequence is never 0). */
  private readonly slotOf = new KeyIndex();
  private records = Buffer.allocUnsafeSlow(FIRST_SLOTS * SLOT_BYTES);
  private lengths = new Int32Array(FIRST_SLOTS);
  /** Slots freed, to reuse first; then slots never used, from `used` up. */
  private free = new Int32Array(FIRST_SLOTS);
  private freeCount = 0;
  private used = 0;

  clear(): void {
    this.slotOf.clear();
    this.freeCount = 0;
    this.used = 0;
  }

  /** Keeps the record of the fact at `seq`, which just became the active value of its (subject, predicate). */
  keep(seq: number, record: Uint8Array): void {
    if (record.length > SLOT_BYTES) return;
    let slot: number;
    if (this.freeCount > 0) slot = this.free[--this.freeCount]!;
    else {
      if (this.used === MAX_SLOTS) return;
      if (this.used === this.lengths.length) this.grow();
      slot = this.used++;
    }
    this.records.set(record, slot * SLOT_BYTES);
    this.lengths[slot] = record.length;
    this.slotOf.add(seq, slot + 1);
  }

  /** The kept record of the fact at `seq` as it now stands, or undefined: a view, valid until this position changes. */
  get(seq: number): Buffer | undefined {
    const slot = this.slotOf.find(seq, FIRST) - 1;
    if (slot < 0) return undefined;
    const start = slot * SLOT_BYTES;
    return this.records.subarray(start, start + this.lengths[slot]!);
  }

  /** A change to the fact at `seq` (`bytes`: its changed record, of which only the header differs): kept records follow. */
  change(seq: number, bytes: Uint8Array): void {
    const slot = this.slotOf.find(seq, FIRST) - 1;
    if (slot < 0) return;
    const records = this.records;
    const start = slot * SLOT_BYTES;
    // A loop: 88 bytes cost less by hand than a subarray and `set`.
    for (let i = 0; i < HEADER_BYTES; i++) records[start + i] = bytes[i]!;
  }

  /** The fact at `seq` is no longer an active value: its slot is freed. */
  drop(seq: number): void {
    const slot = this.slotOf.find(seq, FIRST) - 1;
    if (slot < 0) return;
    this.slotOf.remove(seq, slot + 1);
    if (this.freeCount === this.free.length) {
      const grown = new Int32Array(this.free.length * 2);
      grown.set(this.free);
      this.free = grown;
    }
    this.free[this.freeCount++] = slot;
  }

  private grow(): void {
    const slots = Math.min(MAX_SLOTS, this.lengths.length * 2);
    const records = Buffer.allocUnsafeSlow(slots * SLOT_BYTES);
    records.set(this.records.subarray(0, this.used * SLOT_BYTES), 0);
    this.records = records;
    const lengths = new Int32Array(slots);
    lengths.set(this.lengths);
    this.lengths = lengths;
  }
}
