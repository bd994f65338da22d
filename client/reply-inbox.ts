/**
 * The client's requests over one reply subscription: each request publishes with a reply subject carrying a token
 * (`<inbox>.<token>`), and one wildcard subscription hands each reply to its waiter. This is what `nc.request`
 * does, minus a cost every agent paid on every call: nats.js 2.29 settles each *successful* request by also
 * building a `NatsError` (a stack capture) to reject a promise nobody reads — about a sixth of a recalling agent's
 * CPU, and garbage besides (decisions §38; the router's `ReplyMux` avoids it the same way, §15).
 *
 * Failures come out as the `NatsError`s `nc.request` gives (`NoResponders`, `Timeout`, `ConnectionClosed`), built
 * only when they happen, so the transport maps them to ShardmindErrors exactly as before.
 *
 * Timeouts share one timer, armed for the earliest deadline, instead of a `setTimeout` and a `clearTimeout` per
 * request: with 64 requests in flight the per-request timer (its `Timeout` object, its closure, the timer list's
 * upkeep) was ~4% of a recalling client's CPU and part of what each scavenge had to copy (decisions §56).
 */
import { ErrorCode as NatsErrorCode, NatsError, createInbox, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from 'nats';
import { headersOrNone } from '../protocol/index.ts';

/** The longest delay `setTimeout` takes (Node's TIMEOUT_MAX). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

interface Waiting {
  readonly resolve: (m: Msg) => void;
  readonly reject: (e: NatsError) => void;
  /** `performance.now()` past which the request fails with a timeout. */
  readonly deadline: number;
}

/** What a connection says about its inboxes: a caller's own connection may use a prefix its permissions allow. */
interface InboxOptions {
  readonly options?: { readonly inboxPrefix?: string };
}

export class ReplyInbox {
  private readonly prefix: string;
  private sub: Subscription | undefined;
  private readonly waiting = new Map<number, Waiting>();
  private nextToken = 1;
  /** The one timeout timer, and the deadline it is armed for (Infinity: none). */
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;

  constructor(private readonly nc: NatsConnection) {
    this.prefix = `${createInbox((nc as InboxOptions).options?.inboxPrefix)}.`;
  }

  /** Publishes `data` to `subject` and resolves with the reply, or rejects with nats.js's error for the failure. */
  request(subject: string, data: Uint8Array, timeoutMs: number, headers: MsgHdrs | undefined): Promise<Msg> {
    try {
      this.subscribe();
    } catch (err) {
      return Promise.reject(err as NatsError); // the connection is closed or draining
    }
    const token = this.nextToken++;
    // As setTimeout reads its delay: anything but 1 ms to 2^31 - 1 ms (NaN, Infinity, 0) is 1 ms.
    const deadline = performance.now() + (timeoutMs >= 1 && timeoutMs <= MAX_TIMEOUT_MS ? timeoutMs : 1);
    return new Promise<Msg>((resolve, reject) => {
      this.waiting.set(token, { resolve, reject, deadline });
      if (deadline < this.timerAt) this.arm(deadline);
      const reply = this.prefix + token;
      try {
        this.nc.publish(subject, data, headers === undefined ? { reply } : { reply, headers });
      } catch (err) {
        this.waiting.delete(token);
        reject(err as NatsError);
      }
    });
  }

  /**
   * Arms the timer for `at`. Unreferenced: a waiting request's connection keeps the process alive, and a timer left
   * armed after the last reply must not (it fires once, finds nothing due, and is not re-armed).
   */
  private arm(at: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(this.expire, Math.max(0, at - performance.now()));
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  /** Fails every request whose deadline has passed, and re-arms for the earliest one left. */
  private readonly expire = (): void => {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const [token, w] of this.waiting) {
      if (w.deadline <= now) {
        this.waiting.delete(token);
        w.reject(NatsError.errorForCode(NatsErrorCode.Timeout));
      } else if (w.deadline < next) next = w.deadline;
    }
    if (next !== Infinity) this.arm(next);
  };

  /**
   * Subscribed on first use. When the subscription ends — the connection closed or drained, or the server refused it
   * (a permission violation: a login whose subscribe rights do not cover this inbox) — whatever still waits fails at
   * once with that error, as `nc.request`'s waiters do, rather than at its timeout; the next request subscribes anew.
   */
  private subscribe(): void {
    if (this.sub !== undefined && !this.sub.isClosed()) return;
    const sub: Subscription = this.nc.subscribe(`${this.prefix}*`, {
      callback: (err, msg) => void (err ? this.failAll(sub, err) : this.onReply(msg)),
    });
    this.sub = sub;
    void sub.closed.then(() => this.failAll(sub, NatsError.errorForCode(NatsErrorCode.ConnectionClosed)));
  }

  private failAll(sub: Subscription, err: NatsError): void {
    if (this.sub !== sub) return;
    this.sub = undefined;
    const left = [...this.waiting.values()];
    this.waiting.clear();
    this.disarm();
    for (const w of left) w.reject(err);
  }

  private onReply(msg: Msg): void {
    const token = Number(msg.subject.slice(this.prefix.length));
    const w = this.waiting.get(token);
    if (w === undefined) return; // timed out already
    this.waiting.delete(token);
    // As nats.js reads it: only an empty message with status 503 is "no responders"; any other is the reply. Its
    // headers through headersOrNone: whoever saw the request may reply with a header block nats.js throws on, and a
    // throw here would end the connection's read loop.
    if (msg.data.length === 0 && headersOrNone(msg)?.code === 503) w.reject(NatsError.errorForCode(NatsErrorCode.NoResponders));
    else w.resolve(msg);
  }
}
