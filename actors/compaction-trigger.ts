/**
 * The automatic trigger of log compaction on a leader: once the log holds `everyEntries` entries past the newest
 * snapshot, compact (one at a time). It learns where the newest snapshot is when the leader starts; a compaction
 * that fails is tried again after `RETRY_AFTER_MS`, not at every write. `everyEntries` 0 disables it.
 */
import type { Clock } from './clock.ts';

/** Wait after a failed automatic compaction before the next try. */
export const RETRY_AFTER_MS = 30_000;

export interface CompactionTriggerOptions {
  /** Compact when this many entries were applied since the newest snapshot; 0: never automatically. */
  readonly everyEntries: number;
  readonly clock: Clock;
  /** The newest snapshot's sequence (0 when none). */
  newestSnapshotSeq(): Promise<number>;
  /** Runs one compaction; resolves with the snapshot's sequence. */
  compact(): Promise<number>;
  log(line: string): void;
}

export class CompactionTrigger {
  /** The newest snapshot's sequence, once known. */
  private baseline: number | undefined;
  private running = false;
  private stopped = false;
  private notBefore = 0;

  constructor(private readonly o: CompactionTriggerOptions) {}

  /** Starts watching (the leader started serving): asks where the newest snapshot is. */
  start(): void {
    if (this.o.everyEntries <= 0) return;
    this.o.newestSnapshotSeq().then(
      (seq) => {
        this.baseline = Math.max(this.baseline ?? 0, seq);
      },
      (err: unknown) => {
        // Not knowing, assume none: the first compaction then comes after `everyEntries` from seq 0.
        this.baseline ??= 0;
        this.o.log(`compaction trigger: newest snapshot unknown (${(err as Error)?.message ?? String(err)}); counting from seq 0`);
      },
    );
  }

  /** A compaction ran (automatic or commanded) up to `seq`. */
  compacted(seq: number): void {
    this.baseline = Math.max(this.baseline ?? 0, seq);
  }

  /** Called as the leader applies: starts a compaction when one is due. Cheap when none is. */
  onApplied(position: number): void {
    if (this.stopped || this.running || this.baseline === undefined || this.o.everyEntries <= 0) return;
    if (position - this.baseline < this.o.everyEntries || this.o.clock.now() < this.notBefore) return;
    this.running = true;
    this.o.log(`compaction due: ${position - this.baseline} entries since the snapshot at seq ${this.baseline}`);
    this.o.compact().then(
      (seq) => {
        this.running = false;
        this.compacted(seq);
      },
      (err: unknown) => {
        this.running = false;
        this.notBefore = this.o.clock.now() + RETRY_AFTER_MS;
        this.o.log(`automatic compaction failed (next try in ${RETRY_AFTER_MS / 1000} s): ${(err as Error)?.message ?? String(err)}`);
      },
    );
  }

  /** Stops triggering (the leader stopped serving). A compaction under way finishes on its own. */
  stop(): void {
    this.stopped = true;
  }
}
