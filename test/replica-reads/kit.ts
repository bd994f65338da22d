/**
 * What the replica-read tests share: a connection to one server of the test cluster, raw requests in either
 * encoding, and a follower's staleness bound as its `status` reports it.
 */
import { connect as natsConnect, headers, type NatsConnection } from 'nats';
import {
  CONTENT_TYPE_HEADER,
  JSON_CONTENT_TYPE,
  decodePayload,
  encodePayload,
  type Encoding,
} from '../../protocol/index.ts';
import { ctl } from '../failover/fault-kit.ts';

/** A connection that prefers `url` (the others only if it is down). */
export function connectTo(url: string, all: readonly string[]): Promise<NatsConnection> {
  return natsConnect({ servers: [url, ...all.filter((u) => u !== url)], noRandomize: true, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
}

/** One request, its decoded reply (an error reply too); throws what NATS throws (timeout, no responders). */
export async function ask<T = Record<string, unknown>>(
  nc: NatsConnection,
  subject: string,
  body: unknown,
  o: { timeoutMs?: number; encoding?: Encoding } = {},
): Promise<T> {
  const encoding = o.encoding ?? 'msgpack';
  const h = headers();
  if (encoding === 'json') h.set(CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE);
  const m = await nc.request(subject, encodePayload(body, encoding), { timeout: o.timeoutMs ?? 2_000, headers: h });
  return decodePayload(m.data, encoding) as T;
}

/** A host's `staleMs` for `domain` (a follower's bound), or undefined when it has none or does not answer. */
export async function staleMsOn(nc: NatsConnection, node: string, domain: string): Promise<number | undefined> {
  try {
    const s = await ctl<{ shards: { domain: string; staleMs?: number }[] }>(nc, node, 'status', {}, 1_000);
    return s.shards.find((x) => x.domain === domain)?.staleMs;
  } catch {
    return undefined;
  }
}

/** The reply of a read, loosely typed for assertions. */
export interface ReadReply {
  readonly v: 1;
  readonly servedBy?: string;
  readonly staleMs?: number;
  readonly facts?: readonly { readonly id: string; readonly text: string }[];
  readonly fact?: { readonly id: string };
  readonly seqs?: Record<string, number>;
  readonly error?: { readonly code: string; readonly message: string; readonly retryable: boolean };
}
