/**
 * The read ops (recall, get, history) against one replica's LMDB, and their replies — shared by the leader's
 * service (`shard-service.ts`, `sm.shard.<domain>.<op>`) and the replica service (`replica-service.ts`,
 * `sm.replica.<domain>.<op>`), so both answer a read with the same bytes apart from who served it.
 */
import {
  DEFAULT_HISTORY_LIMIT,
  ErrorCode,
  ShardmindError,
  packRecallReply,
  packRecallTable,
  parseGetRequest,
  parseHistoryRequest,
  parseKnownColumns,
  parseRecallLayout,
  parseRecallRequest,
  recallTableBody,
  toRecallQuery,
  toWireFact,
  type Encoding,
  type GetRequest,
  type HistoryRequest,
  type PackedServed,
  type RecallLayout,
  type RecallReply,
  type RecallRequest,
  type RecallTableReply,
  type ReplicaOp,
} from '../protocol/index.ts';
import type { RecalledFact, ShardStore } from '../shards/index.ts';
import type { Clock } from './clock.ts';

/** What a read needs of its replica. */
export interface ReadContext {
  readonly domain: string;
  readonly clock: Clock;
  readonly maxRecallLimit: number;
  readonly store: ShardStore;
  /** The sequence reads reflect. */
  position(): number;
}

/** A parsed read request, by op. */
export type ReadRequest =
  | { readonly op: 'recall'; readonly req: RecallRequest; readonly layout: RecallLayout; readonly withColumns: boolean }
  | { readonly op: 'get'; readonly req: GetRequest }
  | { readonly op: 'history'; readonly req: HistoryRequest };

/** Validates a read op's body (BAD_REQUEST naming the field otherwise). */
export function parseRead(op: ReplicaOp, body: unknown): ReadRequest {
  switch (op) {
    case 'recall':
      return { op, req: parseRecallRequest(body), layout: parseRecallLayout(body), withColumns: !parseKnownColumns(body) };
    case 'get':
      return { op, req: parseGetRequest(body) };
    case 'history':
      return { op, req: parseHistoryRequest(body) };
  }
}

/** Who served a replica read, and its staleness bound; undefined for a plain leader read. */
export type Served = PackedServed | undefined;

/**
 * Runs the read now against the store. A recall comes back as a `RecallAnswer` (its bytes are written once the
 * encoding is known); get and history as reply bodies. Throws NOT_FOUND for a missing fact.
 */
export function runRead(r: ReadRequest, o: ReadContext, served: Served): unknown {
  switch (r.op) {
    case 'recall': {
      const result = o.store.recall(toRecallQuery(r.req, o.clock.now(), o.maxRecallLimit));
      return new RecallAnswer(o.domain, result.facts, Math.max(result.appliedSeq, o.position()), served, r.layout, r.withColumns, result.partial === true);
    }
    case 'get': {
      const fact = o.store.getFact(r.req.factId);
      if (!fact) throw new ShardmindError(ErrorCode.NOT_FOUND, `factId: no fact "${r.req.factId}" in the ${o.domain} shard`);
      return { v: 1, domain: o.domain, fact: toWireFact(fact), ...served };
    }
    case 'history': {
      // Paged inside the store: a subject with 100k facts read whole stalled the leader past its lease.
      const page = o.store.historyPage(r.req.subject, r.req.predicate, r.req.limit ?? DEFAULT_HISTORY_LIMIT, r.req.before);
      return {
        v: 1,
        domain: o.domain,
        facts: page.facts.map((f) => toWireFact(f)),
        ...(page.next !== undefined ? { next: page.next } : {}),
        ...served,
      };
    }
  }
}

/**
 * What a recall found, turned into its reply only once the encoding is known: msgpack is written straight from
 * the store's facts (`packRecallReply`, `packRecallTable`: no intermediate objects), JSON goes through objects.
 */
export class RecallAnswer {
  constructor(
    readonly domain: string,
    readonly facts: readonly RecalledFact[],
    readonly seq: number,
    readonly served: Served = undefined,
    readonly layout: RecallLayout = 'objects',
    /** A table's `columns`: false when the request said it knows them (`parseKnownColumns`). */
    readonly withColumns = true,
    /** The store's answer was cut by a bound on its work (`RecallResult.partial`): the reply says so. */
    readonly partial = false,
  ) {}

  body(): RecallReply | RecallTableReply {
    if (this.layout === 'table') return recallTableBody(this.domain, this.facts, this.seq, this.served, this.withColumns, this.partial);
    return {
      v: 1,
      domains: [this.domain],
      facts: this.facts.map((f) => toWireFact(f)),
      seqs: { [this.domain]: this.seq },
      ...this.served,
      ...(this.partial ? { partial: true as const } : {}),
    };
  }

  packed(): Uint8Array {
    if (this.layout === 'table') return packRecallTable(this.domain, this.facts, this.seq, this.served, this.withColumns, this.partial);
    return packRecallReply(this.domain, this.facts, this.seq, this.served, this.partial);
  }
}

/** A handler's result as `respond` sends it: a recall's msgpack bytes, or a body to encode. */
export function onWire(reply: unknown, encoding: Encoding): unknown {
  if (!(reply instanceof RecallAnswer)) return reply;
  return encoding === 'msgpack' ? reply.packed() : reply.body();
}
