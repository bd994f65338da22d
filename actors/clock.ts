/** Time as a seam: the leader stamps `recordedAt`, reads compute decay, and waits are bounded by a `Clock`. */

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
