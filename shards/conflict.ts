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
