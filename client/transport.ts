/**
 * One request on the wire: encode (msgpack, or JSON with its content-type header), NATS request/reply, decode,
 * unwrap the error envelope. NATS's own failures become ShardmindErrors so the retry loop sees one kind of error:
 * no responders → UNAVAILABLE (nothing was delivered, so always safe to retry), no reply in time → TIMEOUT (the
 * request may or may not have been applied), a request over the server's `max_payload` → TOO_LARGE, not sent and not
 * retryable (the same bytes are refused again). Requests go out over one reply subscription (`reply-inbox.ts`), not
 * `nc.request`, whose every successful call also built an error nobody reads.
 */
import { ErrorCode as NatsErrorCode, Events, NatsError, headers, type MsgHdrs, type NatsConnection } from 'nats';
import {
  CONTENT_TYPE_HEADER,
  ErrorCode,
  JSON_CONTENT_TYPE,
  ShardmindError,
  decodePayload,
  encodePayload,
  headersOrNone,
  unwrapReply,
  type Encoding,
} from '../protocol/index.ts';
import { ReplyInbox } from './reply-inbox.ts';

export class Transport {
  private readonly jsonHeaders: MsgHdrs | undefined;
  private readonly inbox: ReplyInbox;
  /** Since when the connection to NATS is down (nats.js reconnecting), for a TIMEOUT to say why no reply came. */
  private disconnectedAt: number | undefined;

  constructor(
    private readonly nc: NatsConnection,
    readonly encoding: Encoding,
  ) {
    this.inbox = new ReplyInbox(nc);
    void this.followConnection();
    if (encoding === 'json') {
      this.jsonHeaders = headers();
      this.jsonHeaders.set(CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE);
    }
  }

  private async followConnection(): Promise<void> {
    try {
      for await (const s of this.nc.status()) {
        if (s.type === Events.Disconnect) this.disconnectedAt ??= Date.now();
        else if (s.type === Events.Reconnect) this.disconnectedAt = undefined;
      }
    } catch {
      // The connection closed: nothing left to follow.
    }
  }

  /** Sends `body` to `subject` and returns the reply body, or throws the reply's error as a ShardmindError. */
  async request<T>(subject: string, body: object, timeoutMs: number): Promise<T> {
    const data = encodePayload(body, this.encoding);
    // Checked here, not left to nats.js: its MAX_PAYLOAD_EXCEEDED says neither size, and read as a failed request it
    // was retried until the deadline as UNAVAILABLE. (The JSON header's few bytes count too: nats.js's refusal of a
    // message this check let by is mapped the same way below.)
    const maxPayload = this.nc.info?.max_payload;
    if (maxPayload !== undefined && data.length > maxPayload) throw tooLarge(subject, data.length, maxPayload);
    let reply;
    try {
      reply = await this.inbox.request(subject, data, Math.max(1, Math.round(timeoutMs)), this.jsonHeaders);
    } catch (err) {
      if (err instanceof NatsError && err.code === NatsErrorCode.MaxPayloadExceeded) {
        throw tooLarge(subject, data.length, this.nc.info?.max_payload, err);
      }
      throw fromNatsError(err, subject, timeoutMs, this.disconnectedAt);
    }
    // A reply is in the request's encoding; a server that could not tell says so with its own content-type. A header
    // block nats.js cannot decode (it throws on each read) counts as none.
    const encoding: Encoding = headersOrNone(reply)?.get(CONTENT_TYPE_HEADER)?.startsWith(JSON_CONTENT_TYPE)
      ? 'json'
      : this.encoding;
    let decoded: unknown;
    try {
      decoded = decodePayload(reply.data, encoding);
    } catch (cause) {
      throw new ShardmindError(ErrorCode.INTERNAL, `undecodable reply on ${subject}`, { cause });
    }
    return unwrapReply<T>(decoded);
  }
}

/** A request NATS will not carry: the same bytes are refused every time, so never retryable. */
function tooLarge(subject: string, bytes: number, maxPayload: number | undefined, cause?: unknown): ShardmindError {
  const size = cause === undefined ? `${bytes} bytes` : `${bytes} bytes and its headers`;
  const limit = maxPayload === undefined ? "over the NATS server's max_payload" : `over the NATS server's max_payload of ${maxPayload} bytes`;
  return new ShardmindError(ErrorCode.TOO_LARGE, `request on ${subject}: ${size}, ${limit}; not sent`, {
    retryable: false,
    ...(cause !== undefined && { cause }),
  });
}

function fromNatsError(err: unknown, subject: string, timeoutMs: number, disconnectedAt: number | undefined): ShardmindError {
  if (err instanceof NatsError) {
    if (err.code === NatsErrorCode.NoResponders) {
      return new ShardmindError(ErrorCode.UNAVAILABLE, `no responder on ${subject}`, { cause: err });
    }
    if (err.code === NatsErrorCode.Timeout) {
      // While nats.js reconnects, a request is held in its buffer and times out: say so, or it reads as a slow host.
      const why = disconnectedAt === undefined ? '' : `: not connected to NATS since ${new Date(disconnectedAt).toISOString()} (reconnecting)`;
      return new ShardmindError(ErrorCode.TIMEOUT, `no reply on ${subject} within ${Math.round(timeoutMs)} ms${why}`, {
        cause: err,
      });
    }
    if (err.code === NatsErrorCode.ConnectionClosed || err.code === NatsErrorCode.ConnectionDraining) {
      return new ShardmindError(ErrorCode.UNAVAILABLE, `connection closed: ${err.message}`, {
        cause: err,
        retryable: false,
      });
    }
  }
  const message = err instanceof Error ? err.message : String(err);
  return new ShardmindError(ErrorCode.UNAVAILABLE, `request on ${subject} failed: ${message}`, { cause: err });
}
