/**
 * Retries within a deadline. A shard's leadership moves (failover, migration) leave a gap of a few hundred
 * milliseconds in which requests get NOT_LEADER, SHARD_MOVED, no responders or no answer; the client waits a little
 * and tries again with the same opId, so a write that did land the first time is not applied twice.
 *
 * Backoff starts small (10 ms) so a short gap costs little, doubles, is capped, and is jittered so many clients
 * that failed together do not retry together.
 */
import { ErrorCode, ShardmindError } from '../protocol/index.ts';

export interface RetryPolicy {
  /** First wait. Default 10 ms. */
  readonly baseMs: number;
  /** Longest single wait. Default 250 ms. */
  readonly capMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { baseMs: 10, capMs: 250 };

/** How long to wait before retry number `attempt` (0-based): half fixed, half random ("equal jitter"). */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  return ceiling / 2 + random() * (ceiling / 2);
}

export interface RetryContext {
  /** Epoch ms after which no new attempt starts. */
  readonly deadline: number;
  readonly policy: RetryPolicy;
  /** Whether a failure may be retried: only if a repeat cannot do harm (see `ShardmindClient`). */
  readonly mayRetry: (err: ShardmindError) => boolean;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  /** Called before each retry (tests count them; callers may log). */
  readonly onRetry?: (err: ShardmindError, attempt: number, delayMs: number) => void;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `attempt(remainingMs)` until it succeeds, fails with an error that may not be retried, or the deadline
 * passes; then throws the last error. Every failure must be a `ShardmindError` (the transport maps NATS errors).
 */
export async function withRetry<T>(attempt: (remainingMs: number) => Promise<T>, ctx: RetryContext): Promise<T> {
  const now = ctx.now ?? Date.now;
  const sleep = ctx.sleep ?? defaultSleep;
  for (let n = 0; ; n++) {
    try {
      return await attempt(Math.max(1, ctx.deadline - now()));
    } catch (err) {
      if (!(err instanceof ShardmindError)) throw err;
      if (!ctx.mayRetry(err)) throw err;
      const wait = backoffDelay(n, ctx.policy);
      if (now() + wait >= ctx.deadline) {
        throw new ShardmindError(err.code, `${err.message} (gave up after ${n + 1} attempts)`, {
          cause: err,
          retryable: err.retryable,
        });
      }
      ctx.onRetry?.(err, n + 1, wait);
      await sleep(wait);
    }
  }
}

/**
 * Codes that mean "try again": the server replied that it could not do it now. They do not prove nothing was
 * applied: a NOT_LEADER or UNAVAILABLE can follow a write that landed (a pipeline break, a guard racing the new
 * leader, a lost append ack), so a write is retried only with its same opId.
 */
export function isRefusal(err: ShardmindError): boolean {
  return (
    err.code === ErrorCode.NOT_LEADER || err.code === ErrorCode.SHARD_MOVED || err.code === ErrorCode.UNAVAILABLE
  );
}

/**
 * A call the client gave up waiting for (its `close()` ran out of time) after it may have reached the server: the
 * write may or may not have been applied. Retryable: send it again with the same `opId` (a new client is fine) and
 * the shard applies it at most once; a new opId would count the fact a second time.
 */
export class OutcomeUnknownError extends ShardmindError {
  constructor(
    message: string,
    /** The write's opId, to retry it with; undefined for a call that carries none (a read, a task step). */
    readonly opId: string | undefined,
  ) {
    super(ErrorCode.TIMEOUT, message, { retryable: true });
  }
}
