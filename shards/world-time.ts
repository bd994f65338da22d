/**
 * World time (`validFrom` / `validTo`: when a fact was true) against record time (`recordedAt` / `invalidatedAt`:
 * when the shard learned it and when it closed it), for recall: at a time t — now, or `asOf` — a fact is returned
 * when it was believed at t (recorded by then, not forgotten) and true at t in the world as it was known at t.
 * Status is not the test: a value recorded as already superseded by a value valid later in world time (PST, then
 * UTC "from 2099") is the true one until then, and a value valid from 2099 is not true today. So a plain recall and
 * one `asOf` now give the same answer.
 *
 * Clocks disagree a little (an agent's `observedAt`, the leader's `recordedAt`, the reading host's now), so a world
 * boundary within CLOCK_SKEW_MS after the fact was recorded (or closed) counts as having passed when it was recorded
 * (or closed): a fact whose `validFrom` defaults to an agent's clock a second ahead is returned at once, and the value
 * it replaced is gone at once, instead of both or neither for that second. Only boundaries further ahead — a
 * scheduled change — are compared with t.
 */
/** How far ahead of the leader's clock an agent's clock may be: the largest `observedAt − recordedAt` accepted. */
export const CLOCK_SKEW_MS = 5 * 60_000;

/** The times visibility reads: a fact's, or the numbers peeked from its bytes. */
export interface WorldTimes {
  readonly validFrom: number;
  readonly validTo?: number | undefined;
  readonly recordedAt: number;
  readonly invalidatedAt?: number | undefined;
}

/** When the fact (or the shard's closing of it) was recorded: its world end within the skew after counts as then. */
function closedAt(f: WorldTimes): number {
  return f.invalidatedAt ?? f.recordedAt;
}

/**
 * From when the fact is true for a reader who knows everything recorded (a plain recall): −Infinity when it was
 * already true when recorded (within the skew), else its scheduled `validFrom`.
 */
export function currentSince(f: WorldTimes): number {
  return f.validFrom <= f.recordedAt + CLOCK_SKEW_MS ? -Infinity : f.validFrom;
}

/**
 * A record of history: written with a `validTo` that had already passed (within the skew), and never closed by the
 * shard — "alice worked at acme from 2015 to 2020", remembered today. Recall returns it as it returned every active
 * fact before world time was applied: what it says is about the past, and an agent asking about alice must still
 * find it. (Hidden, it would be reachable only through `includeInactive` or `history`, and `prune` would never
 * remove it either, since it stays active: review-session10b finding 3.)
 */
function recordsHistory(f: WorldTimes): boolean {
  return f.validTo !== undefined && f.invalidatedAt === undefined && f.validTo <= f.recordedAt + CLOCK_SKEW_MS;
}

/**
 * Until when the fact is true for that reader: Infinity when open (or a record of history), −Infinity when its world
 * end had passed (within the skew) when it was closed, else its scheduled `validTo`.
 */
export function currentUntil(f: WorldTimes): number {
  if (f.validTo === undefined || recordsHistory(f)) return Infinity;
  return f.validTo <= closedAt(f) + CLOCK_SKEW_MS ? -Infinity : f.validTo;
}

/** A plain recall's test at `now`, from `currentSince` and `currentUntil` (the shard knows everything it recorded). */
export function trueNow(since: number, until: number, now: number): boolean {
  return since <= now && now < until;
}

/**
 * An `asOf` recall's test: recorded by `t` and true at `t` as known at `t`. The same as `trueNow` at t for a store
 * whose every `recordedAt` and `invalidatedAt` is at or before t (then a boundary "passed when recorded" has passed
 * by t); before a closing was recorded, the world end is compared with t itself. (The closed interval is the one
 * known now: a fact closed later by a value valid from before t counts as ended at t even for a reader of t.)
 */
export function believedTrueAt(f: WorldTimes, t: number): boolean {
  if (f.recordedAt > t) return false;
  if (f.validFrom > t && f.validFrom > f.recordedAt + CLOCK_SKEW_MS) return false;
  if (f.validTo === undefined || recordsHistory(f)) return true;
  if (f.validTo <= t) return false;
  const closed = closedAt(f);
  return !(closed <= t && f.validTo <= closed + CLOCK_SKEW_MS);
}

/**
 * What is wrong with an `observedAt` (ms) for an entry the leader stamps `recordedAt`: more than CLOCK_SKEW_MS ahead
 * of it (a wrong clock, a bad extraction) it would never decay and, as the default `validFrom`, could pin a `one`
 * value for years; undefined when it is fine. Checked before the entry is appended.
 */
export function observedAtProblem(observedAt: number | undefined, recordedAt: number): string | undefined {
  if (observedAt === undefined || observedAt <= recordedAt + CLOCK_SKEW_MS) return undefined;
  return `must not be more than ${CLOCK_SKEW_MS / 60_000} minutes ahead of the shard's clock (${new Date(recordedAt).toISOString()}); validFrom may be in the future`;
}
