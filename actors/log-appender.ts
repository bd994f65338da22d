/**
 * Appends to a shard's JetStream stream the way `js.publish` does on the wire — the same headers
 * (`Nats-Msg-Id`, `Nats-Expected-Last-Sequence`), JetStream's ack or error JSON on a reply subject — but with one
 * reply subscription for every append, acks matched by a token in the reply subject, and one timer for all
 * timeouts. `js.publish` goes through `nc.request`, which per append builds a deferred, a timer and, on every
 * success, a `NatsError` with a stack trace (to cancel itself): ~5% of a remember's host CPU, on the write path.
 */
import { createInbox, headers, type Msg, type NatsConnection, type Subscription } from 'nats';
import { headersOrNone } from '../protocol/index.ts';
import { guarded } from './guarded.ts';
import { PREV_HEADER } from './log-codec.ts';
import { LEVEL_HEADER } from './log-level.ts';

export interface AppendAck {
  readonly seq: number;
  /** JetStream already had this `Nats-Msg-Id` in its duplicate window: nothing was appended. */
  readonly duplicate: boolean;
}

/**
 * JetStream's refusals of an append for want of room, as nats-server 2.9+ sends them: the server's
 * `max_file_store` (or its disk) is used up (10023 "insufficient resources"), the account's storage limit is reached
 * (10002 "resource limits exceeded for account"), or no storage is left to reserve (10047 "insufficient storage
 * resources available"). The message was not stored: the log's tail is where it was.
 */
export const NO_ROOM_API_CODES: ReadonlySet<number> = new Set([10023, 10002, 10047]);

/** An append that failed; `apiCode` is JetStream's error code when it sent one (10071: wrong last sequence). */
export class AppendError extends Error {
  constructor(
    message: string,
    readonly apiCode?: number,
  ) {
    super(message);
    this.name = 'AppendError';
  }

  /** JetStream refused the append because its store has no room (`NO_ROOM_API_CODES`): nothing was appended. */
  get noRoom(): boolean {
    return this.apiCode !== undefined && NO_ROOM_API_CODES.has(this.apiCode);
  }
}

export type AppendDone = (err: AppendError | undefined, ack: AppendAck | undefined) => void;

interface Waiting {
  readonly done: AppendDone;
  readonly deadline: number;
}

const MSG_ID_HEADER = 'Nats-Msg-Id';
const EXPECTED_LAST_SEQ_HEADER = 'Nats-Expected-Last-Sequence';
const EXPECTED_LAST_MSG_ID_HEADER = 'Nats-Expected-Last-Msg-Id';

/** The latest append published, while its answer is awaited: what the next append may chain to. */
interface Previous {
  readonly token: number;
  readonly subject: string;
  readonly msgId: string;
  readonly expectedLastSeq: number;
}
const utf8 = new TextDecoder();

export class LogAppender {
  private readonly prefix: string;
  private readonly sub: Subscription;
  /** By token, in append order: deadlines only grow, so the first entry is always the next to expire. */
  private readonly waiting = new Map<number, Waiting>();
  private nextToken = 1;
  private previous: Previous | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly timeoutMs: number,
  ) {
    // The connection's own inbox prefix (a host's is HOST_INBOX_PREFIX): an agent cannot direct a service's
    // answer into an append's pending ack, since services answer only `_INBOX.` (decisions §69).
    this.prefix = `${createInbox((nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix)}.`;
    this.sub = nc.subscribe(`${this.prefix}*`, { callback: guarded('log appender acks', (msg) => this.onReply(msg)) });
  }

  /**
   * Publishes `data` expecting the stream's last sequence to be `expectedLastSeq`; `done` is called exactly once.
   * `prev`, when known, is the hash of the entry at `expectedLastSeq` (the `Sm-Prev` header, see `log-codec.ts`).
   * `level` is the log level the message needs (`log-level.ts`): sent as `Sm-Level` when above 1 (absent means 1).
   *
   * An append that expects the sequence right after the previous append's, while that one is still unanswered, also
   * expects the log's last message to BE that one (`Nats-Expected-Last-Msg-Id`). The sequence alone does not say
   * whose message sits there: when a rival appends one message and the previous append is refused for it (10071),
   * this one expects exactly the rival's sequence and would land on top of it — a deposed leader's trailing write
   * after the new leader's epoch marker, which deposes the new leader in turn and breaks the log's `Sm-Prev` chain
   * (found by the chaos soak, decisions §75). JetStream checks the header when it applies the message, in log order,
   * on every replica alike. Only while the previous append is in flight: once it is answered, the sequence check
   * suffices, and nats-server does not keep the last message id across a restart once it is older than the
   * duplicate window.
   */
  append(subject: string, data: Uint8Array, msgId: string, expectedLastSeq: number, done: AppendDone, prev?: string, level = 1): void {
    if (this.closed) return done(new AppendError('the log appender is closed'), undefined);
    const token = this.nextToken++;
    const h = headers();
    h.set(MSG_ID_HEADER, msgId);
    h.set(EXPECTED_LAST_SEQ_HEADER, String(expectedLastSeq));
    if (prev !== undefined) h.set(PREV_HEADER, prev);
    if (level > 1) h.set(LEVEL_HEADER, String(level));
    const before = this.previous;
    if (before !== undefined && before.subject === subject && before.expectedLastSeq + 1 === expectedLastSeq && this.waiting.has(before.token)) {
      h.set(EXPECTED_LAST_MSG_ID_HEADER, before.msgId);
    }
    this.previous = { token, subject, msgId, expectedLastSeq };
    this.waiting.set(token, { done, deadline: Date.now() + this.timeoutMs });
    try {
      this.nc.publish(subject, data, { reply: this.prefix + token, headers: h });
    } catch (err) {
      this.waiting.delete(token);
      return done(new AppendError(`append failed: ${(err as Error)?.message ?? String(err)}`), undefined);
    }
    if (this.timer === undefined) this.schedule(this.timeoutMs);
  }

  /** Fails what is still waiting and stops listening for acks. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const left = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of left) w.done(new AppendError('the log appender closed before the ack'), undefined);
    try {
      this.sub.unsubscribe();
    } catch {
      // The connection is already closed: nothing to unsubscribe from.
    }
  }

  private onReply(msg: Msg): void {
    const token = Number(msg.subject.slice(this.prefix.length));
    const w = this.waiting.get(token);
    if (w === undefined) return; // timed out already
    this.waiting.delete(token);
    const [err, ack] = parseAck(msg);
    w.done(err, ack);
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => this.expire(), ms);
    this.timer.unref();
  }

  private expire(): void {
    this.timer = undefined;
    const now = Date.now();
    for (const [token, w] of this.waiting) {
      if (w.deadline > now) {
        this.schedule(w.deadline - now);
        return;
      }
      this.waiting.delete(token);
      w.done(new AppendError(`no ack from JetStream within ${this.timeoutMs} ms`), undefined);
    }
  }
}

/** JetStream's reply to a publish: `{stream, seq, duplicate?}` or `{error: {code, err_code, description}}`. */
function parseAck(msg: Msg): [AppendError | undefined, AppendAck | undefined] {
  if (msg.data.length === 0) {
    // A status-only reply: 503 when no stream listens on the subject.
    // Anyone who saw the append's reply subject may send a header block nats.js throws on: it reads as no status.
    const code = headersOrNone(msg)?.code ?? 0;
    return [new AppendError(code === 503 ? 'no stream takes this subject (503 no responders)' : `empty ack (status ${code})`), undefined];
  }
  let body: { stream?: unknown; seq?: unknown; duplicate?: unknown; error?: { err_code?: unknown; description?: unknown } };
  try {
    body = JSON.parse(utf8.decode(msg.data)) as typeof body;
  } catch {
    return [new AppendError('the ack is not JSON'), undefined];
  }
  if (body.error) {
    const code = typeof body.error.err_code === 'number' ? body.error.err_code : undefined;
    return [new AppendError(String(body.error.description ?? 'JetStream refused the append'), code), undefined];
  }
  if (typeof body.seq !== 'number' || typeof body.stream !== 'string' || body.stream === '') {
    return [new AppendError('the ack names no stream and sequence'), undefined];
  }
  return [undefined, { seq: body.seq, duplicate: body.duplicate === true }];
}
