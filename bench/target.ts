/**
 * The seam between the measurement plan and the systems measured: shardmind (straight to a shard, through the
 * router) and the central Redis store each expose the same remember/recall operations over the same workload
 * (`workload.ts`), so one plan (`plan.ts`) measures them all the same way.
 */

export interface MemoryTarget {
  /** Short name for tables ("shardmind", "redis"). */
  readonly name: string;
  /** Writes facts `from..to-1` as fast as the system allows (big concurrent batches); used to preload. */
  preload(from: number, to: number): Promise<void>;
  /** The operations to measure, by name ("recall_direct", "remember_router", …). */
  readonly ops: readonly TargetOp[];
  /** The server-side processes to account CPU to, by name (pids may change across restarts). */
  processes(): Readonly<Record<string, number>>;
  close(): Promise<void>;
}

export interface TargetOp {
  readonly name: string;
  readonly kind: 'remember' | 'recall';
  /**
   * One operation. For `remember`, `i` is a fact index never written before; for `recall`, the i-th query against
   * `stored` preloaded facts. Resolves with the number of facts returned (recall) or 1 (remember); throws on error.
   */
  run(i: number, stored: number): Promise<number>;
}
