/**
 * The identity index: identity (see `identityOf`) → the id of the one active fact with that identity, which is how
 * an assert of "the same fact again" finds the fact to reinforce.
 *
 * Why not one LMDB put per new fact: identities are content, so their keys land on random B-tree pages; at 500k
 * facts those random inserts (a page copied per put, and written at commit) were what made each new fact cost more
 * as the store grew (~49 µs CPU per fact at 500k with them, ~40 µs flat without). So, like the posting index, the
 * identities of the open segment's facts live in memory, and the previous segment's are written to LMDB in key
 * order while the next segment's first MERGE_SPAN sequences are applied (one sweep through the table instead of a
 * random insert each).
 *
 * Determinism without stored progress: at the k-th sequence of the window, ⌈remaining / (MERGE_SPAN − k)⌉ of the
 * sealed identities still unwritten are written, smallest keys first; a release (supersede, retract, forget) drops
 * an unwritten one. At start-up the remainder is rebuilt from the segment's active facts minus those already in
 * LMDB — the same set a replica that never stopped holds — so the bytes do not depend on batching or restarts.
 * The index is derived from the facts: its memory part is the active facts of (at most) two segments.
 */
import { decodeValue, encodeValue } from './codec.ts';
import { seqOfFactId } from './ids.ts';
import { MERGE_SPAN, SEGMENT_SEQS, segmentOf } from './postings.ts';
import type { Table } from './tables.ts';

interface SealedIdentities {
  readonly segment: number;
  /** Unwritten identities → fact id. */
  readonly pending: Map<string, string>;
  /** The sealed identities in key order (sorted once); `next` is the first not yet considered. */
  readonly order: string[];
  next: number;
}

function sealedOf(segment: number, pending: Map<string, string>): SealedIdentities | undefined {
  return pending.size === 0 ? undefined : { segment, pending, order: [...pending.keys()].sort(), next: 0 };
}

/** Identities are only read inside the write transaction (by `apply`), so written ones are read back from LMDB. */
export class IdentityIndex {
  private open = new Map<string, string>();
  private openSegment = 0;
  private sealed: SealedIdentities | undefined;

  constructor(private readonly table: Table) {}

  /**
   * Starts again at `seq` (start-up, or after a failed transaction): `facts(segment, add)` re-adds the identities
   * of a segment's active facts — the open segment's, and the previous one's while its window is open.
   */
  reset(seq: number, facts: (segment: number, add: (identity: string, factId: string) => void) => void): void {
    const segment = segmentOf(seq);
    this.openSegment = segment;
    this.open = new Map();
    this.sealed = undefined;
    facts(segment, (identity, id) => this.open.set(identity, id));
    const k = seq - segment * SEGMENT_SEQS;
    if (segment === 0 || k + 1 >= MERGE_SPAN) return;
    const pending = new Map<string, string>();
    facts(segment - 1, (identity, id) => {
      const stored = this.table.getBinary(identity);
      if (stored === undefined || decodeValue<string>(stored) !== id) pending.set(identity, id);
    });
    this.sealed = sealedOf(segment - 1, pending);
  }

  /** The fact id filed under `identity`, if any (the caller checks that fact is still active). */
  lookup(identity: string): string | undefined {
    const mine = this.open.get(identity) ?? this.sealed?.pending.get(identity);
    if (mine !== undefined) return mine;
    const bytes = this.table.getBinary(identity);
    return bytes === undefined ? undefined : decodeValue<string>(bytes);
  }

  /** A fact created active (in the open segment). */
  add(identity: string, factId: string): void {
    this.open.set(identity, factId);
  }

  /** `factId` left the active set: its identity no longer points at it, wherever it is kept. */
  release(identity: string, factId: string): void {
    const seq = seqOfFactId(factId);
    const segment = seq === undefined ? -1 : segmentOf(seq);
    if (segment === this.openSegment) {
      if (this.open.get(identity) === factId) this.open.delete(identity);
      return;
    }
    const sealed = this.sealed;
    if (sealed !== undefined && segment === sealed.segment && sealed.pending.get(identity) === factId) {
      sealed.pending.delete(identity);
      return;
    }
    const bytes = this.table.getBinary(identity);
    if (bytes !== undefined && decodeValue<string>(bytes) === factId) this.table.removeSync(identity);
  }

  /** Before applying `seq`: seals the open segment at a boundary; within the window, writes what is due. */
  rollTo(seq: number): void {
    const segment = segmentOf(seq);
    if (segment > this.openSegment) {
      this.writePending(Infinity);
      this.sealed = sealedOf(this.openSegment, this.open);
      this.open = new Map();
      const jumped = segment > this.openSegment + 1;
      this.openSegment = segment;
      if (jumped) this.writePending(Infinity);
    }
    const sealed = this.sealed;
    if (sealed === undefined) return;
    const k = seq - segment * SEGMENT_SEQS;
    this.writePending(k + 1 >= MERGE_SPAN ? Infinity : Math.ceil(sealed.pending.size / (MERGE_SPAN - k)));
  }

  /** Writes the `count` smallest unwritten identities of the sealed segment. */
  private writePending(count: number): void {
    const sealed = this.sealed;
    if (sealed === undefined) return;
    let written = 0;
    while (written < count && sealed.next < sealed.order.length) {
      const identity = sealed.order[sealed.next++]!;
      const id = sealed.pending.get(identity);
      if (id === undefined) continue; // released before its turn
      this.table.putSync(identity, encodeValue(id));
      sealed.pending.delete(identity);
      written++;
    }
    if (sealed.pending.size === 0) this.sealed = undefined;
  }
}
