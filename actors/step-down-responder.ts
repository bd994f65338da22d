/**
 * The gap between leaders. When a leader stops serving (hand-off, fenced, deposed, stopping) its subscription goes
 * at once, but clients keep sending to `sm.shard.<domain>.*` until the next leader subscribes; the shard guard stays
 * silent while the old leader's heartbeat is still within the lease, so those requests would wait out the client's
 * timeout. The old leader therefore keeps answering them with a retryable refusal (SHARD_MOVED after a hand-off,
 * NOT_LEADER otherwise) — nothing is done, the client retries in milliseconds — until it hears a heartbeat of a
 * later epoch (the next leader serves) or `maxMs` passes.
 */
import type { NatsConnection, Subscription } from 'nats';
import { ShardmindError, errorReply, heartbeatSubject, shardSubject, type ErrorCode } from '../protocol/index.ts';
import { guarded } from './guarded.ts';
import { parseHeartbeat } from './heartbeat.ts';
import { answerable, respond } from './respond.ts';

export interface StepDownResponderOptions {
  readonly nc: NatsConnection;
  readonly domain: string;
  readonly code: typeof ErrorCode.SHARD_MOVED | typeof ErrorCode.NOT_LEADER;
  readonly message: string;
  /** Stop once a heartbeat of an epoch above this arrives. */
  readonly epoch: number;
  readonly maxMs: number;
}

/** Starts answering; the returned function stops (idempotent). */
export function startStepDownResponder(o: StepDownResponderOptions): () => void {
  const subs: Subscription[] = [];
  let timer: NodeJS.Timeout | undefined;
  const stop = (): void => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    // Drain, not unsubscribe: requests already on their way to us still get their refusal.
    for (const s of subs.splice(0)) s.drain().catch(() => undefined);
  };
  if (o.nc.isClosed()) return stop;
  const refusal = errorReply(new ShardmindError(o.code, o.message));
  subs.push(
    o.nc.subscribe(shardSubject(o.domain, '*'), {
      callback: guarded(`step-down ${o.domain}`, (msg) => void (msg.reply && answerable(msg, undefined) && respond(msg, refusal))),
    }),
    o.nc.subscribe(heartbeatSubject(o.domain), {
      callback: guarded(`step-down ${o.domain} heartbeat`, (msg) => {
        const hb = parseHeartbeat(msg.data);
        if (hb && hb.epoch > o.epoch) stop();
      }),
    }),
  );
  timer = setTimeout(stop, o.maxMs);
  timer.unref?.();
  return stop;
}
