/**
 * Subscription callbacks that nothing thrown escapes from. nats.js calls a subscription's callback from its protocol
 * parser: a throw there ends the connection's read loop, and the process stays up but deaf — no requests, no JetStream
 * acks, no PONGs (review-session10 finding 1). A promise rejected with nobody listening exits Node 20. So every
 * callback in actors/ that handles a message from outside is wrapped by `guarded`: a throw is logged (throttled, so
 * a flood of bad messages cannot flood the log) and, when the message has a reply subject, answered best-effort with
 * an error reply; and every promise a callback leaves running gets `.catch` through `detached`.
 */
import type { Msg, NatsError } from 'nats';
import { ErrorCode, ShardmindError, errorReply } from '../protocol/index.ts';
import { systemClock, type Clock } from './clock.ts';
import { respond } from './respond.ts';

/** Where a guard reports what it caught. */
export type GuardReport = (err: unknown, where: string) => void;

/** Lines a report may carry at most: an error's message can quote what a sender put in its message. */
const MAX_REPORT_CHARS = 2_000;

/** Reports to stderr: for the subscriptions whose owners pass no log of their own. */
export const stderrReport: GuardReport = (err, where) =>
  void process.stderr.write(`${new Date().toISOString()} ${where}: ${describeError(err)}\n`);

/** An error as one bounded log text: its stack when it has one. */
export function describeError(err: unknown): string {
  const text = err instanceof Error ? (err.stack ?? `${err.name}: ${err.message}`) : String(err);
  return text.length > MAX_REPORT_CHARS ? `${text.slice(0, MAX_REPORT_CHARS)}…` : text;
}

/**
 * Lets at most `burst` reports through per `windowMs`. What goes past the budget is only counted; the first report
 * of the next window says how many were dropped. Constant memory whatever the rate.
 */
export class ReportThrottle {
  private windowStart = Number.NEGATIVE_INFINITY;
  private used = 0;
  private dropped = 0;

  constructor(
    private readonly report: GuardReport,
    private readonly burst = 10,
    private readonly windowMs = 60_000,
    private readonly clock: Clock = systemClock,
  ) {}

  /** Reports `err`, unless this window's budget is spent. */
  note(err: unknown, where: string): void {
    const now = this.clock.now();
    if (now - this.windowStart >= this.windowMs) {
      if (this.dropped > 0) this.safeReport(`${this.dropped} more like it were not logged (at most ${this.burst} a ${this.windowMs / 1000} s)`, where);
      this.windowStart = now;
      this.used = 0;
      this.dropped = 0;
    }
    if (this.used < this.burst) {
      this.used++;
      this.safeReport(err, where);
    } else {
      this.dropped++;
    }
  }

  /** A report that throws (a broken log sink) must not undo the guard. */
  private safeReport(err: unknown, where: string): void {
    try {
      this.report(err, where);
    } catch {
      // Nowhere left to say it.
    }
  }
}

/**
 * A subscription callback that runs `handle` for each message and lets nothing escape into nats.js: a throw is
 * reported through `throttle` and, when the message wants a reply, answered with an error reply (the thrown
 * ShardmindError, or INTERNAL). Errors nats.js hands the callback (a permission violation, the subscription
 * closing) are not messages and are ignored, as every caller did before.
 */
export function guarded(where: string, handle: (msg: Msg) => void, throttle: ReportThrottle = new ReportThrottle(stderrReport)): (err: NatsError | null, msg: Msg) => void {
  return (err, msg) => {
    if (err) return;
    try {
      handle(msg);
    } catch (thrown) {
      caught(thrown, msg, where, throttle);
    }
  };
}

/** A promise a callback leaves running: its rejection is reported, never left unhandled. */
export function detached(p: Promise<unknown>, where: string, throttle: ReportThrottle): void {
  p.catch((err: unknown) => throttle.note(err, where));
}

function caught(thrown: unknown, msg: Msg, where: string, throttle: ReportThrottle): void {
  let subject = '';
  let reply: string | undefined;
  try {
    subject = msg.subject;
    reply = msg.reply;
  } catch {
    // Not a message nats.js built: nothing to answer.
  }
  throttle.note(thrown, `${where} (${subject.slice(0, 200)})`);
  if (!reply) return;
  const e = thrown instanceof ShardmindError ? thrown : new ShardmindError(ErrorCode.INTERNAL, `the request on ${subject.slice(0, 200)} could not be handled`);
  try {
    // respond() reads the encoding through readHeaders: a message whose headers broke the handler gets msgpack.
    respond(msg, errorReply(e));
  } catch {
    // Best effort: the caller's timeout covers a reply that cannot be sent.
  }
}
