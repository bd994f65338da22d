/**
 * Warming opened stores (`ShardStore.warmUp`) between other work, one store at a time for the whole process.
 *
 * Why one queue: a host restarting opens all its shards at once. With a loop per shard, each turn of the event loop
 * ran a slice per warming shard (3 × 4 ms for calendar, email and files) before reading a request or a heartbeat;
 * queued, a turn runs one slice, whichever store it is for. At 1M facts a store takes ~2–3 s of slices (§48).
 */
import type { ShardStore } from '../shards/index.ts';

/** The longest a slice holds the event loop (a step may run past it by up to ~1.5 ms: `fact-words.ts`). */
export const WARM_SLICE_MS = 4;

export interface Warming {
  readonly store: ShardStore;
  /** False once the store is no longer served from (replaced, closing, the host stopping): warming it stops. */
  readonly wanted: () => boolean;
  /** Warming ended (the store is warm, or it was closed meanwhile): after `ms` of slices, in `slices` of them. */
  readonly ended: (ms: number, slices: number) => void;
  readonly failed: (err: unknown) => void;
}

interface Queued extends Warming {
  ms: number;
  slices: number;
}

const queue: Queued[] = [];
let scheduled = false;

/** Queues `w.store` to be warmed after the stores queued before it. */
export function warmInTurn(w: Warming): void {
  queue.push({ ...w, ms: 0, slices: 0 });
  schedule();
}

function schedule(): void {
  if (scheduled || queue.length === 0) return;
  scheduled = true;
  // setImmediate: after the I/O this turn brought in. Not unref'd: an unref'd immediate does not stop the loop from
  // blocking in its poll, so each slice waited for the next I/O (measured: ~1 s a slice with a 1 s timer pending).
  // Nothing is kept alive long: a closed store's `warmUp` answers false, and it leaves the queue.
  setImmediate(turn);
}

function turn(): void {
  scheduled = false;
  const w = queue[0];
  if (w === undefined) return;
  let more = false;
  if (w.wanted()) {
    const started = performance.now();
    try {
      more = w.store.warmUp(started + WARM_SLICE_MS);
      w.ms += performance.now() - started;
      w.slices++;
      if (!more) w.ended(w.ms, w.slices);
    } catch (err) {
      more = false;
      w.failed(err);
    }
  }
  if (!more) queue.shift();
  schedule();
}
