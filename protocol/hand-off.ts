/**
 * The router's hand-off of a one-shard request. A router that has routed a request to exactly one shard sends it
 * on with the header `sm-reply-to: <the agent's reply subject>`, and the shard answers the agent itself: three
 * messages on the wire instead of four, and the reply's bytes cross the network once instead of twice. The shard
 * copies `sm-router-node` from the request into its reply, so an agent sees the same headers as when the router
 * answers. Refusals (NOT_LEADER, SHARD_MOVED: "I did nothing, ask again") still go to the request's own reply
 * subject, the router's, so the router retries them as it always has.
 */
import { ErrorCode } from './errors.ts';

/** Request header: where the shard sends its answer instead of the request's reply subject. */
export const REPLY_TO_HEADER = 'sm-reply-to';
/** Reply header naming the Mini whose router took the request (operators' logs, and tests that kill that Mini). */
export const ROUTER_NODE_HEADER = 'sm-router-node';
/** Error codes that mean "this shard did nothing, ask again shortly": a router retries them itself. */
export const REFUSAL_CODES: ReadonlySet<string> = new Set([ErrorCode.NOT_LEADER, ErrorCode.SHARD_MOVED]);

/** A subject a reply may be published to: NATS tokens, no wildcards, no whitespace, of sane length. */
export function isReplySubject(subject: string): boolean {
  return subject.length > 0 && subject.length <= 512 && /^[^\s*>.]+(\.[^\s*>.]+)*$/.test(subject);
}
