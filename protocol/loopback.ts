/**
 * In-process delivery of shard requests. A shard leader serving `sm.shard.<domain>.*` on a NATS connection also
 * registers here under that connection; a router on the same connection (the same host process) then hands it the
 * decoded request body directly instead of a NATS round trip through nats-server and back into this very process
 * (two socket hops, two event-loop wake-ups and a msgpack encode/decode on each side).
 *
 * The contract is the wire's, minus the bytes: the handler gets a request body as it would be decoded from the
 * wire and returns the reply body the shard would have sent (an error as `{ v: 1, error }`, never a throw) — or a
 * successful reply it has already encoded, as its msgpack bytes — or `undefined` when it cannot take requests any
 * more (its subscription is draining): the caller then goes over NATS.
 */
import type { NatsConnection } from 'nats';

/** Answers one request (`op` of `sm.shard.<domain>.<op>`); `undefined` when the caller must use NATS instead. */
export type LoopbackHandler = (op: string, body: unknown) => Promise<unknown> | undefined;

const byConnection = new WeakMap<NatsConnection, Map<string, LoopbackHandler>>();

/** Registers the handler of `domain` on `nc`; the returned function removes it (only if it is still this one). */
export function serveLoopback(nc: NatsConnection, domain: string, handler: LoopbackHandler): () => void {
  let handlers = byConnection.get(nc);
  if (!handlers) byConnection.set(nc, (handlers = new Map()));
  handlers.set(domain, handler);
  return () => {
    if (handlers.get(domain) === handler) handlers.delete(domain);
  };
}

/** The in-process handler of `domain` on `nc`, if a leader of it serves in this process on that connection. */
export function loopbackFor(nc: NatsConnection, domain: string): LoopbackHandler | undefined {
  return byConnection.get(nc)?.get(domain);
}
