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
 * Reading a fact is its record with the header of its newest change put over it. Which changes a fact has is kept
 * in memory, rebuilt at open from the `changes` table in key order — derived data, so it cannot change the bytes on
 * disk: a map (`key-index.ts`) from a fact's position to its newest change's key, one entry per changed fact, and
 * for each change key the key of the same fact's change before it, so a fact's changes are a list, newest first.
 * One entry per fact, not per change: a fact reinforced 20k times filed 20k entries under one hash, one linear-probing
 * cluster that every read of it (and of positions whose slots fell in the cluster) walked — 88 µs per getFact of the
 * hot fact against 5, and a reopen quadratic in its changes. The lists belong to the applier and run ahead of a batch
 * still committing: a reader whose snapshot lacks the newest change of a fact does not find that record and takes the
 * next older one, so it reads the fact as of its own snapshot (change records are never removed).
 *
 * The applier reads through `read` (its own transaction, the group of facts being filled included); readers —
 * getFact, history, recall — through `readStored` and `reads`, which take the records from their snapshot too.
 */
import { factByteLength, factSeqOf, HEADER_BYTES, withHeader } from './fact-codec.ts';
import type { FactGroups } from './fact-groups.ts';
import { KeyIndex } from './key-index.ts';
import type { ChangeTable, FactTable } from './tables.ts';

const APPEND = { append: true } as const;

/** Positions per page of the changed-facts bitmap (8 KB). */
const CHANGED_PAGE = 65536;

/** `KeyIndex.find`'s visitor taking the first entry: a fact has one. */
const FIRST = (): boolean => true;

export class FactChanges {
  /** Fact position → the key of its newest change. */
  private readonly newest = new KeyIndex();
  /** Change key → the key of the same fact's change before it, 0 for its first. */
  private previous = new Uint32Array(1024);
  /**
   * One bit per fact position: set when the fact has any change. Most facts have none (a recall's answers at 1M:
   * ~2%), and the bitmap (125 KB a million positions, cached) answers that without a probe of `newest`, a cache
   * miss at 1M facts. Pages of CHANGED_PAGE positions, allocated as changes arrive, so a sparse log pays little.
   */
  private changed: (Uint32Array | undefined)[] = [];
  /** A fact's bytes with a change's header over them: valid until the next read that needs one. */
  private scratch = Buffer.allocUnsafeSlow(4096);

  constructor(
    private readonly facts: FactGroups,
    private readonly table: ChangeTable,
  ) {}

  /** Refills the lists from the stored records (at open, and after a failed batch), in key order as they were made. */
  rebuild(): void {
    this.newest.clear();
    this.previous = new Uint32Array(1024);
    this.changed = [];
    for (const { key, value } of this.table.getRange({})) this.link(factSeqOf(value), key);
  }

  /** Appends change `key` (the store's next): `bytes` are the changed fact's whole record; only its header is stored. */
  record(key: number, bytes: Buffer): void {
    // lmdb-js answers false (its types say void) when the key is not above the last one: never drop a change.
    const appended: unknown = this.table.putSync(key, bytes.subarray(0, HEADER_BYTES), APPEND);
    if (appended === false) throw new Error(`fact change ${key} is not above the stored changes`);
    this.link(factSeqOf(bytes), key);
  }

  /** Files change `key` as the newest of the fact at `seq`. */
  private link(seq: number, key: number): void {
    if (key >= this.previous.length) {
      const grown = new Uint32Array(Math.max(key + 1, this.previous.length * 2));
      grown.set(this.previous);
      this.previous = grown;
    }
    const before = this.newest.find(seq, FIRST);
    if (before !== 0) this.newest.remove(seq, before);
    this.newest.add(seq, key);
    this.previous[key] = before;
    const page = (this.changed[Math.floor(seq / CHANGED_PAGE)] ??= new Uint32Array(CHANGED_PAGE / 32));
    const bit = seq % CHANGED_PAGE;
    page[bit >>> 5] = page[bit >>> 5]! | (1 << (bit & 31));
  }

  /** Whether the fact at `seq` has a change at all (maybe one a reader's snapshot does not hold yet). */
  private hasChanges(seq: number): boolean {
    const page = this.changed[Math.floor(seq / CHANGED_PAGE)];
    if (page === undefined) return false;
    const bit = seq % CHANGED_PAGE;
    return (page[bit >>> 5]! & (1 << (bit & 31))) !== 0;
  }

  /**
   * The applier's read: the record of the fact created at `seq` as it now stands, or undefined. Without changes it
   * is a reused read buffer, else this object's scratch: either way valid only until the next read.
   */
  read(seq: number): Buffer | undefined {
    const bytes = this.facts.read(seq);
    return bytes === undefined ? bytes : this.current(seq, bytes);
  }

  /**
   * A reader's `read`: the fact as its snapshot holds it (record and changes), never the applier's group being
   * filled, which may hold a batch still committing. Valid until the next read.
   */
  readStored(seq: number): Buffer | undefined {
    const bytes = this.facts.stored(seq);
    return bytes === undefined ? bytes : this.current(seq, bytes);
  }

  /** `bytes` (the stored record of the fact at `seq`, from any read) with its newest change this transaction sees applied. */
  current(seq: number, bytes: Buffer): Buffer {
    if (!this.hasChanges(seq)) return bytes;
    const key = this.newest.find(seq, FIRST);
    return key === 0 ? bytes : this.withNewest(key, bytes);
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
      const newest = this.hasChanges(key) ? this.newest.find(key, FIRST) : 0;
      yield { key, value: newest === 0 ? value : Buffer.from(this.withNewest(newest, value)) };
      if (--left === 0) return;
    }
  }

  /** `bytes` with the header of change `newest` over them, or of the newest older change of the same fact this transaction sees. */
  private withNewest(newest: number, bytes: Buffer): Buffer {
    // The record is copied first: reading the change may reuse the buffer it sits in.
    const length = factByteLength(bytes);
    if (length > this.scratch.length) this.scratch = Buffer.allocUnsafeSlow(Math.max(length, this.scratch.length * 2));
    const out = this.scratch.subarray(0, length);
    out.set(bytes.subarray(0, length), 0);
    // Newest first; one missing from this snapshot (a batch still committing) gives way to the next older one.
    for (let key = newest; key !== 0; key = this.previous[key]!) {
      const header = this.table.getBinaryFast(key);
      if (header !== undefined) return withHeader(out, header);
    }
    return out;
  }
}
