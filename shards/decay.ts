/**
 * Confidence over time. Decay is computed when reading, never by rewriting data:
 * `effective = confidence × 2^(−(at − reinforcedAt) / halfLife)`.
 */

export const DAY_MS = 86_400_000;

/** Confidence `at` a time, decayed from when the fact was last reinforced. Never above the stored confidence. */
export function effectiveConfidence(
  fact: { readonly confidence: number; readonly reinforcedAt: number; readonly halfLifeDays: number },
  at: number,
): number {
  const elapsed = Math.max(0, at - fact.reinforcedAt);
  return fact.confidence * Math.pow(2, -elapsed / (fact.halfLifeDays * DAY_MS));
}

/** Two independent observations of the same fact: the chance both are wrong is the product of each being wrong. */
export function combineConfidence(a: number, b: number): number {
  return 1 - (1 - a) * (1 - b);
}

/** Newer facts rank higher: 1 when just recorded, ½ after `scaleDays`, ⅓ after twice that (a gentle, fat tail). */
export function recencyWeight(recordedAt: number, at: number, scaleDays = 30): number {
  const ageDays = Math.max(0, at - recordedAt) / DAY_MS;
  return 1 / (1 + ageDays / scaleDays);
}
