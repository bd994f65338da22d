/**
 * The router's JetStream calls (task snapshots in KV, labelled examples in a stream) ride out the moments when a
 * stream has no leader — right after a fresh cluster creates it, or while a Mini that held it is failing over —
 * by retrying for a bounded time. What is still failing at the deadline becomes a retryable UNAVAILABLE, so the
 * agent's client retries rather than treating it as a bug.
 */
import { ErrorCode, ShardmindError } from '../protocol/index.ts';

/** How long one router call keeps retrying a leaderless stream. */
export const JETSTREAM_RETRY_MS = 3_000;

/** nats.js codes for "nobody answered" (no stream leader yet) and "no answer in time". */
const TRANSIENT = new Set(['503', 'TIMEOUT']);

function isTransient(err: unknown): boolean {
  const e = err as { code?: string; api_error?: { code?: number }; message?: string };
  if (e?.code !== undefined && TRANSIENT.has(String(e.code))) return true;
  // JetStream "stream not available / no leader" API errors surface as 503s with these messages.
  return /no (stream )?leader|not available|no responders/i.test(e?.message ?? '');
}

/** Runs `fn`, retrying transient JetStream failures with backoff until `deadlineMs` has passed. */
export async function withJetStreamRetry<T>(what: string, fn: () => Promise<T>, deadlineMs = JETSTREAM_RETRY_MS): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  let delay = 25;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ShardmindError || !isTransient(err)) throw err;
      if (Date.now() + delay > deadline) {
        throw new ShardmindError(ErrorCode.UNAVAILABLE, `${what}: ${(err as Error).message}`, { cause: err });
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 400);
    }
  }
}
