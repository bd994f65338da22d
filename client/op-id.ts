/**
 * Operation ids: time-ordered and unique, so a shard's dedupe table and a log reader both see writes in the order
 * they were made. The format is a ULID (26 Crockford base32 characters: 48 bits of milliseconds, 80 random bits),
 * monotonic within one generator: in the same millisecond the random part is incremented instead of redrawn, so
 * ids made by one client sort in the order it made them even when the clock stands still or steps back.
 */
import { randomFillSync } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const RANDOM_CHARS = 16;

export interface OpIdSource {
  /** The next id; strictly greater (as a string) than every id this source made before. */
  next(): string;
}

/** A monotonic ULID generator. `now` and `random` are injectable for tests. */
export function createOpIdSource(
  now: () => number = Date.now,
  random: (bytes: Uint8Array) => void = (b) => void randomFillSync(b),
): OpIdSource {
  let lastMs = -1;
  let lastRandom: number[] = [];
  return {
    next(): string {
      const ms = Math.max(now(), lastMs);
      if (ms === lastMs) lastRandom = increment(lastRandom);
      else {
        const bytes = new Uint8Array(RANDOM_CHARS);
        random(bytes);
        lastRandom = Array.from(bytes, (b) => b & 31);
        lastMs = ms;
      }
      return encodeTime(ms) + lastRandom.map((d) => ALPHABET[d]).join('');
    },
  };
}

function encodeTime(ms: number): string {
  let out = '';
  let rest = ms;
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[rest % 32] + out;
    rest = Math.floor(rest / 32);
  }
  return out;
}

/** Adds one to a base-32 digit string. 80 random bits do not overflow in one millisecond. */
function increment(digits: readonly number[]): number[] {
  const out = [...digits];
  for (let i = out.length - 1; i >= 0; i--) {
    if (out[i]! < 31) {
      out[i] = out[i]! + 1;
      return out;
    }
    out[i] = 0;
  }
  return out;
}
