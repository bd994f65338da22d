/**
 * The table layout of a recall reply (`layout: "table"` in the request, decisions §28): the facts as rows of one
 * array per fact under `columns` named once per reply, instead of one map per fact naming every field again. At
 * 10 facts that halves the reply (the field names were ~45% of it) and what every hop spends on it: the shard
 * writing it, nats-server passing it in and out, the client decoding it. Values are lossless: timestamps are
 * integer epoch milliseconds (the ISO strings' exact instants), absent optional values are nil, `domain` is the
 * reply's only domain, and `source` is spread into `agent`, `task`, `node`. Plain msgpack or JSON arrays that any
 * language reads; a reader finds each column by its name, so columns can be added later without breaking it.
 *
 * A reader that already knows the columns says how many (`knownColumns` in the request: the count of
 * `RECALL_TABLE_COLUMNS` it reads by position). When that is exactly this writer's list, the reply leaves `columns`
 * out: 185 bytes of every reply (~1,000 at the bench's queries) that the shard writes, nats-server passes on and the
 * client reads. Any other count, or none, gets `columns` as before. Columns are only ever appended, so a count names
 * one list.
 */
import type { RecalledFact } from '../shards/index.ts';
import { badRequest } from './errors.ts';
import { packReplyHead, packReplyTail, tailFields, type PackedServed } from './fact-pack.ts';
import { MsgpackWriter } from './msgpack-writer.ts';
import type { RecallLayout, RecallTableReply, WireTableCell } from './wire.ts';

/** The columns a shard writes, in this order. */
export const RECALL_TABLE_COLUMNS = [
  'id',
  'text',
  'subject',
  'predicate',
  'object',
  'confidence',
  'effectiveConfidence',
  'score',
  'validFrom',
  'validTo',
  'observedAt',
  'recordedAt',
  'invalidatedAt',
  'reinforcedAt',
  'confirmations',
  'status',
  'agent',
  'task',
  'node',
] as const;

export type RecallTableColumn = (typeof RECALL_TABLE_COLUMNS)[number];

/**
 * The layout a recall request asks for: `"objects"` (the default: a map per fact) or `"table"`. Read by the shard
 * from the request body, beside `parseRecallRequest`, which leaves it out: a router that asks several shards on an
 * agent's behalf merges their facts as objects, so the field must not travel on with the fields it re-sends.
 */
export function parseRecallLayout(body: unknown): RecallLayout {
  const layout = (body as { readonly layout?: unknown } | null)?.layout;
  if (layout === undefined || layout === 'objects') return 'objects';
  if (layout === 'table') return 'table';
  throw badRequest('layout', `must be "objects" or "table", got ${JSON.stringify(layout)}`);
}

/**
 * Whether the reply may leave `columns` out: the request's `knownColumns` is the length of this writer's list.
 * Absent (or null, as for every optional field) is false; anything but a whole number is BAD_REQUEST naming the field.
 */
export function parseKnownColumns(body: unknown): boolean {
  const known = (body as { readonly knownColumns?: unknown } | null)?.knownColumns;
  if (known === undefined || known === null) return false;
  if (typeof known !== 'number' || !Number.isInteger(known) || known < 0) {
    throw badRequest('knownColumns', `must be a whole number of columns, got ${JSON.stringify(known)}`);
  }
  return known === RECALL_TABLE_COLUMNS.length;
}

/** One fact's row, in `RECALL_TABLE_COLUMNS` order (for JSON; msgpack is written by `packRecallTable`). */
function row(f: RecalledFact): WireTableCell[] {
  const s = f.source;
  return [
    f.id,
    f.text,
    f.subject ?? null,
    f.predicate ?? null,
    f.object ?? null,
    f.confidence,
    f.effectiveConfidence,
    f.score,
    f.validFrom,
    f.validTo ?? null,
    f.observedAt,
    f.recordedAt,
    f.invalidatedAt ?? null,
    f.reinforcedAt,
    f.confirmations,
    f.status,
    s.agent,
    s.task ?? null,
    s.node ?? null,
  ];
}

/**
 * The table reply as a body to encode (JSON); without `columns` when the reader knows them (`parseKnownColumns`),
 * with `partial: true` when the store's answer was cut.
 */
export function recallTableBody(domain: string, facts: readonly RecalledFact[], seq: number, served?: PackedServed, withColumns = true, partial = false): RecallTableReply {
  const rows = facts.map(row);
  const seqs = { [domain]: seq };
  const body: RecallTableReply = withColumns ? { v: 1, domains: [domain], columns: RECALL_TABLE_COLUMNS, rows, seqs, ...served } : { v: 1, domains: [domain], rows, seqs, ...served };
  return partial ? { ...body, partial: true } : body;
}

const w = new MsgpackWriter();

/** The same reply as `recallTableBody`, as msgpack written straight from the store's facts. */
export function packRecallTable(domain: string, facts: readonly RecalledFact[], seq: number, served?: PackedServed, withColumns = true, partial = false): Uint8Array {
  return w.written(() => {
    w.mapHeader(tailFields(served, partial) + 3 + (withColumns ? 1 : 0));
    packReplyHead(w, domain);
    if (withColumns) w.raw(COLUMNS);
    w.str('rows');
    w.arrayHeader(facts.length);
    for (const f of facts) packRow(f);
    packReplyTail(w, domain, seq, served, partial);
  });
}

/** `"columns": [...]`, the same for every reply: encoded once. */
const COLUMNS = (() => {
  const names = new MsgpackWriter();
  return Uint8Array.from(
    names.written(() => {
      names.str('columns');
      names.arrayHeader(RECALL_TABLE_COLUMNS.length);
      for (const c of RECALL_TABLE_COLUMNS) names.str(c);
    }),
  );
})();

function packRow(f: RecalledFact): void {
  w.arrayHeader(RECALL_TABLE_COLUMNS.length);
  w.str(f.id);
  w.str(f.text);
  optionalStr(f.subject);
  optionalStr(f.predicate);
  const o = f.object;
  if (o === undefined) w.nil();
  else if (typeof o === 'string') w.str(o);
  else {
    w.mapHeader(1);
    w.str('entity');
    w.str(o.entity);
  }
  w.num(f.confidence);
  w.num(f.effectiveConfidence);
  w.num(f.score);
  w.int(f.validFrom);
  optionalInt(f.validTo);
  w.int(f.observedAt);
  w.int(f.recordedAt);
  optionalInt(f.invalidatedAt);
  w.int(f.reinforcedAt);
  w.num(f.confirmations);
  w.str(f.status);
  const s = f.source;
  w.str(s.agent);
  optionalStr(s.task);
  optionalStr(s.node);
}

function optionalStr(s: string | undefined): void {
  if (s === undefined) w.nil();
  else w.str(s);
}

function optionalInt(n: number | undefined): void {
  if (n === undefined) w.nil();
  else w.int(n);
}
