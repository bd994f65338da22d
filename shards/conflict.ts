/**
 * Which of two disagreeing values of a `one` predicate is the current one. Every replica decides the same way
 * because the decision reads only the two facts: world time (`validFrom`) first, then when the system learned it
 * (`recordedAt`), then the source (`agent/node`) as a plain string comparison. A complete tie goes to the newcomer:
 * log order is the same everywhere, so that is deterministic too.
 */
import type { Source } from './types.ts';

export interface Contender {
  readonly validFrom: number;
  readonly recordedAt: number;
  readonly source: Source;
}

export function sourceOrderKey(s: Source): string {
  return `${s.agent}/${s.node ?? ''}`;
}

/** True when `challenger` should replace `incumbent` as the active value. */
export function challengerWins(challenger: Contender, incumbent: Contender): boolean {
  if (challenger.validFrom !== incumbent.validFrom) return challenger.validFrom > incumbent.validFrom;
  if (challenger.recordedAt !== incumbent.recordedAt) return challenger.recordedAt > incumbent.recordedAt;
  const a = sourceOrderKey(challenger.source);
  const b = sourceOrderKey(incumbent.source);
  return a >= b;
}

/** A value of the same `one` (subject, predicate) recorded before, already superseded, as `placeLateValue` reads it. */
export interface RecordedValue extends Contender {
  /** Its creating position. */
  readonly seq: number;
  readonly validTo?: number | undefined;
}

/** Where a value that lost to the standing one goes in world time: its end, and the values to close at its start. */
export interface LatePlacement {
  readonly validTo: number;
  /** Superseded values ordered before it whose world interval ran past its start: they end where it begins. */
  readonly shortened: readonly RecordedValue[];
}

/**
 * A value that lost to the standing one (`recorded_superseded`: the standing value is valid later in world time)
 * takes its place among the values recorded before, in the order `challengerWins` defines (world time, then when
 * recorded, then source): it ends where the next value after it begins — or at the standing value's world time, or
 * its own `validTo`, whichever is first, never before it begins — and a value before it whose interval ran past its
 * start now ends there. So the values of a `one` predicate never overlap in world time, whatever order they
 * arrive in (PST from Nov 1, CET from Nov 20, then EST from Oct 1: EST ends Nov 1). The standing value itself is
 * never shortened: it was asserted true at `standingFrom`. Deterministic: it reads only the values, and the caller
 * passes every superseded value of the (subject, predicate), in any order.
 */
export function placeLateValue(
  late: Contender & { readonly validTo?: number | undefined },
  standingFrom: number,
  recorded: readonly RecordedValue[],
): LatePlacement {
  let end = Math.min(late.validTo ?? Infinity, standingFrom);
  const shortened: RecordedValue[] = [];
  for (const v of recorded) {
    if (!challengerWins(late, v)) end = Math.min(end, v.validFrom);
    else if ((v.validTo ?? Infinity) > late.validFrom) shortened.push(v);
  }
  // Creating-position order: the changes are appended in the same order on every replica.
  shortened.sort((a, b) => a.seq - b.seq);
  return { validTo: Math.max(late.validFrom, end), shortened };
}
