/**
 * Changes to stored facts — superseded, reinforced, retracted, forgotten — kept as records of their own, appended
 * in the order they happen, instead of rewriting the fact's record in place.
 *
 * Why: a fact record is written once, appended at its creating position; a later change used to put it again, and
 * the fact it changes is nearly always far behind the append point (a `one` value is superseded ~100k positions
 * after it was written, a reinforced fact anywhere), so each change was a random page of a large file read, copied
 * and written back at commit: ~11 µs on these machines (get and put ~2.8 µs each, ~5–6 µs of the commit's page
 * writes), at ~0.22 changes per fact about 1.6 µs of the load's ~15 µs per fact (measured with `bench/store-ab.ts`).
 * A change is now an append to `changes`, keyed by a counter (`StoreState.changes`): the fact's new header — the
 * fixed 88 bytes of numbers and flags (`fact-codec.ts`), its strings never change — which names the fact by the
 * creating position stored in it. Forgetting still rewrites the record (its text must go) and appends the
 * tombstone's header too, so the newest header is always the truth.
 *
 * Reading a fact is its record with the header of its newest change put over it. Which changes a fact has is an
 * in-memory multimap (fact position → change key, `key-index.ts`), rebuilt at open from the `changes` table — derived
 * data, so it cannot change the bytes on disk. It belongs to the applier and runs ahead of a batch still committing:
 * a reader whose snapshot lacks the newest change of a fact does not find that record and takes the next older one,
 * so it reads the fact as of its own snapshot (change records are never removed).
 */
import { factByteLength, factSeqOf, HEADER_BYTES, withHeader } from './fact-codec.ts';
import type { FactGroups } from './fact-groups.ts';
import { KeyIndex } from './key-index.ts';
import type { ChangeTable, FactTable } from './tables.ts';

const APPEND = { append: true } as const;

export class FactChanges {
  /** Fact position → the keys of its change records. */
  private readonly byFact = new KeyIndex();
  /** A fact's bytes with a change's header over them: valid until the next read that needs one. */
  private scratch = Buffer.allocUnsafeSlow(4096);

  constructor(
    private readonly facts: FactGroups,
    private readonly table: ChangeTable,
  ) {}

  /** Refills the index from the stored records (at open, and after a failed batch). */
  rebuild(): void {
    this.byFact.clear();
    for (const { key, value } of this.table.getRange({})) this.byFact.add(factSeqOf(value), key);
  }

  /** Appends change `key` (the store's next): `bytes` are the changed fact's whole record; only its header is stored. */
  record(key: number, bytes: Buffer): void {
    // lmdb-js answers false (its types say void) when the key is not above the last one: never drop a change.
    const appended: unknown = this.table.putSync(key, bytes.subarray(0, HEADER_BYTES), APPEND);
    if (appended === false) throw new Error(`fact change ${key} is not above the stored changes`);
    this.byFact.add(factSeqOf(bytes), key);
  }

  /**
   * The applier's read: the record of the fact created at `seq` as it now stands, or undefined. Without changes it
   * is a reused read buffer, else this object's scratch: either way valid only until the next read.
   */
  read(seq: number): Buffer | undefined {
    const bytes = this.facts.read(seq);
    return bytes === undefined || !this.byFact.has(seq) ? bytes : this.withNewest(seq, bytes);
  }

  /** A reader's `read`: what its snapshot holds. */
  private readStored(seq: number): Buffer | undefined {
    const bytes = this.facts.stored(seq);
    return bytes === undefined || !this.byFact.has(seq) ? bytes : this.withNewest(seq, bytes);
  }

  /** `bytes` (the stored record of the fact at `seq`, from any read) with its newest change applied. */
  current(seq: number, bytes: Buffer): Buffer {
    return this.byFact.has(seq) ? this.withNewest(seq, bytes) : bytes;
  }

  /**
   * The facts table as recall reads it (`RecallContext.t.facts`): each record as it stands in the reader's snapshot.
   * It answers the reads recall makes — `getBinaryFast`, `getBinary`, `getRange` (start, end, limit) — keyed by
   * position, and has no other method, so a new kind of read fails loudly instead of missing the layout.
   */
  reads(): FactTable {
    const reads = {
      getBinaryFast: (seq: number) => this.readStored(seq),
      getBinary: (seq: number) => {
        const bytes = this.readStored(seq);
        return bytes === undefined ? undefined : Buffer.from(bytes.subarray(0, factByteLength(bytes)));
      },
      getRange: (options: { start?: number; end?: number; limit?: number } = {}) => this.range(options),
    };
    return reads as unknown as FactTable;
  }

  private *range(options: { start?: number; end?: number; limit?: number }): Generator<{ key: number; value: Buffer }> {
    let left = options.limit ?? Number.MAX_SAFE_INTEGER;
    if (left <= 0) return;
    for (const [key, value] of this.facts.entries(options.start, options.end)) {
      yield { key, value: this.byFact.has(key) ? Buffer.from(this.withNewest(key, value)) : value };
      if (--left === 0) return;
    }
  }

  private withNewest(seq: number, bytes: Buffer): Buffer {
    // The record is copied first: reading the change may reuse the buffer it sits in.
    const length = factByteLength(bytes);
    if (length > this.scratch.length) this.scratch = Buffer.allocUnsafeSlow(Math.max(length, this.scratch.length * 2));
    const out = this.scratch.subarray(0, length);
    out.set(bytes.subarray(0, length), 0);
    // Newest first; one missing from this snapshot (a batch still committing) gives way to the next older one.
    for (let below = Number.MAX_SAFE_INTEGER; ; ) {
      let key = 0;
      this.byFact.find(seq, (k) => {
        if (k < below && k > key) key = k;
        return false;
      });
      if (key === 0) return out;
      const header = this.table.getBinaryFast(key);
      if (header !== undefined) return withHeader(out, header);
      below = key;
    }
  }
}
