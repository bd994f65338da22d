/**
 * Read-your-writes: a request carrying `minSeq` waits until this replica has applied that sequence, bounded by
 * `limits.minSeqWaitMs`, then fails with TIMEOUT (retryable) rather than answer from older state.
 */
import { ErrorCode, ShardmindError } from '../protocol/index.ts';

interface Waiter {
  readonly seq: number;
  readonly resolve: () => void;
  readonly reject: (err: ShardmindError) => void;
  readonly timer: NodeJS.Timeout;
}

export class SeqWaiters {
  private readonly waiters = new Set<Waiter>();

  constructor(private readonly position: () => number) {}

  /** Resolves once `position() >= seq`, or rejects with TIMEOUT after `timeoutMs`. */
  waitFor(seq: number, timeoutMs: number): Promise<void> {
    if (this.position() >= seq) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        seq,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          reject(
            new ShardmindError(
              ErrorCode.TIMEOUT,
              `sequence ${seq} not applied within ${timeoutMs} ms (applied: ${this.position()})`,
            ),
          );
        }, timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  /** Call after every apply: releases the waiters it satisfies. */
  advanced(): void {
    if (this.waiters.size === 0) return;
    const at = this.position();
    for (const w of this.waiters) {
      if (w.seq <= at) {
        clearTimeout(w.timer);
        this.waiters.delete(w);
        w.resolve();
      }
    }
  }

  /** Fails every waiter (the actor is stopping or stepped down); their timers are cancelled. */
  cancelAll(reason: ShardmindError): void {
    const all = [...this.waiters];
    this.waiters.clear();
    for (const w of all) {
      clearTimeout(w.timer);
      w.reject(reason);
    }
  }
}
