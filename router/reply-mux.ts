/**
 * Requests to shards over one reply subscription: each request publishes with a reply subject carrying a token
 * (`<inbox>.<token>`), and the one wildcard subscription hands each reply to its waiter. It is what `nc.request`
 * does, minus its per-request cost: nats.js 2.29 builds a `NatsError` (a stack capture) to cancel every
 * *successful* request, a few percent of a router's CPU per recall.
 *
 * "No responders" arrives as it does for `nc.request`: an empty status message with code 503, which a request
 * here rejects with an error whose `code` is '503'; a timeout rejects with code 'TIMEOUT'. A reply is handed on
 * as nats.js received it, and its `headers` throw when the block is malformed (anyone can publish to an inbox):
 * read them with `headersOrNone`.
 *
 * `handOff` is a request whose answer goes elsewhere (protocol/hand-off.ts): usually nothing comes back, so its
 * waiters are not timers but entries swept a few times a second; only a bounce (a refusal, a 503) resolves one.
 */
import { createInbox, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from 'nats';
import { headersOrNone } from '../protocol/index.ts';
import { guarded } from './guarded.ts';

/** Why a request got no reply, with the `code` nats.js's own errors use ('503', 'TIMEOUT', 'CONNECTION_CLOSED'). */
export class RequestFailed extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'RequestFailed';
  }
}

interface Waiting {
  readonly resolve: (m: Msg) => void;
  readonly reject: (e: RequestFailed) => void;
  readonly timer: NodeJS.Timeout;
}

/** A handed-off request that may still bounce back until `deadline`. */
interface Bounce {
  readonly deadline: number;
  readonly settle: (m: Msg | undefined) => void;
}

/** How often expired hand-off waiters are dropped: their window only needs to hold roughly. */
const SWEEP_MS = 100;

export class ReplyMux {
  private readonly prefix: string;
  private sub: Subscription | undefined;
  private readonly waiting = new Map<number, Waiting>();
  /** Insertion order is deadline order: every hand-off of one mux uses the same window. */
  private readonly bounces = new Map<number, Bounce>();
  private sweeper: NodeJS.Timeout | undefined;
  private nextToken = 1;

  constructor(
    private readonly nc: NatsConnection,
    /** Where a reply that could not be handled is reported. */
    private readonly log: (line: string) => void = (line) => console.error(`[reply-mux] ${line}`),
  ) {
    this.prefix = `${createInbox()}.`;
  }

  /** Publishes `data` to `subject` and resolves with the reply, or rejects with a `RequestFailed`. */
  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Msg> {
    this.subscribe();
    const token = this.nextToken++;
    return new Promise<Msg>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(token);
        reject(new RequestFailed('TIMEOUT', `no reply on ${subject} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(token, { resolve, reject, timer });
      try {
        this.nc.publish(subject, data, { reply: this.prefix + token });
      } catch (err) {
        clearTimeout(timer);
        this.waiting.delete(token);
        const code = (err as { code?: unknown }).code;
        reject(new RequestFailed(typeof code === 'string' ? code : 'PUBLISH', (err as Error)?.message ?? String(err)));
      }
    });
  }

  /**
   * Publishes a request whose answer goes elsewhere (`headers` say where). Resolves with whatever comes back to us
   * within `windowMs` (a refusal, or a 503 when nobody is subscribed), or with undefined once the window has passed
   * quietly: the normal case, the answer went where it was sent. Throws only if the publish itself fails.
   */
  handOff(subject: string, data: Uint8Array, headers: MsgHdrs, windowMs: number): Promise<Msg | undefined> {
    return new Promise<Msg | undefined>((settle) => this.handOffThen(subject, data, headers, windowMs, settle));
  }

  /**
   * `handOff` with a callback instead of a promise (the router's common recall makes none per request): `settle`
   * is called once, with what came back, or with undefined once the window has passed quietly. Throws if the
   * publish itself fails, before anything is registered.
   */
  handOffThen(subject: string, data: Uint8Array, headers: MsgHdrs, windowMs: number, settle: (m: Msg | undefined) => void): void {
    this.subscribe();
    const token = this.nextToken++;
    this.nc.publish(subject, data, { reply: this.prefix + token, headers });
    this.sweeper ??= setInterval(() => this.sweep(), SWEEP_MS).unref();
    this.bounces.set(token, { deadline: Date.now() + windowMs, settle });
  }

  /** Fails every request still waiting and drops the subscription. */
  close(): void {
    const left = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of left) {
      clearTimeout(w.timer);
      w.reject(new RequestFailed('CONNECTION_CLOSED', 'the router is stopping'));
    }
    for (const b of this.bounces.values()) b.settle(undefined);
    this.bounces.clear();
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    try {
      this.sub?.unsubscribe();
    } catch {
      // The connection is already closed: nothing to unsubscribe from.
    }
    this.sub = undefined;
  }

  /** Subscribed on first use: a router that never asks a shard holds no subscription. */
  private subscribe(): void {
    this.sub ??= this.nc.subscribe(`${this.prefix}*`, { callback: guarded('shard replies', this.log, (msg) => this.onReply(msg)) });
  }

  private sweep(): void {
    const now = Date.now();
    for (const [token, b] of this.bounces) {
      if (b.deadline > now) break;
      this.bounces.delete(token);
      b.settle(undefined);
    }
    if (this.bounces.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  private onReply(msg: Msg): void {
    const token = Number(msg.subject.slice(this.prefix.length));
    const bounced = this.bounces.get(token);
    if (bounced !== undefined) {
      this.bounces.delete(token);
      bounced.settle(msg);
      return;
    }
    const w = this.waiting.get(token);
    if (w === undefined) return; // timed out already
    this.waiting.delete(token);
    clearTimeout(w.timer);
    // A reply whose headers do not decode counts as having none: its body decides (and nats.js would throw here).
    if (msg.data.length === 0 && headersOrNone(msg)?.code === 503) {
      w.reject(new RequestFailed('503', `no responders on ${msg.subject}`));
    } else {
      w.resolve(msg);
    }
  }
}
