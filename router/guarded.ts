/**
 * Subscription callbacks that never throw into nats.js. An exception escaping a `nc.subscribe` callback propagates
 * into nats.js's protocol parser and ends its read loop: the connection stays open but reads nothing more (no
 * requests, no replies, no PONGs), so the router goes deaf without exiting. Every subscription of the router's goes
 * through `guarded`: a throw is logged and, when the message asked for a reply, answered with an error envelope as
 * well as can be done, then the callback returns normally and the next message is read.
 *
 * (actors/ may have its own guard; the router does not import actors/, so it keeps this small one.)
 */
import type { Msg, NatsError } from 'nats';
import { encodePayload, errorReply } from '../protocol/index.ts';

/** What nats.js calls a subscription callback with. */
export type SubscriptionCallback = (err: NatsError | null, msg: Msg) => void;

/**
 * `handle` as a subscription callback: subscription errors are skipped, and whatever `handle` throws is logged
 * (`what` names the subscription) and answered best effort (msgpack, since the request's own encoding may be what
 * could not be read). A reply that cannot be sent is given up: there is nothing left to tell.
 */
export function guarded(what: string, log: (line: string) => void, handle: (msg: Msg) => void): SubscriptionCallback {
  return (err, msg) => {
    if (err) return;
    try {
      handle(msg);
    } catch (thrown) {
      log(`${what}: a message on ${msg.subject} failed: ${(thrown as Error)?.stack ?? String(thrown)}`);
      if (!msg.reply) return;
      try {
        msg.respond(encodePayload(errorReply(thrown), 'msgpack'));
      } catch {
        // The connection is closing, or the error does not encode: the requester times out instead.
      }
    }
  };
}
