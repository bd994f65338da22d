/**
 * A recall reply, in either layout, as the client's `RecallResult`. The client asks for the table layout
 * (`layout: "table"`, decisions §28); a shard answers with it, while a router that merged several shards, or a
 * host too old to know the field, answers with a map per fact. Table rows become facts directly — timestamps are
 * epoch milliseconds, so a `Date` costs no parsing, where the object layout's ISO strings must be parsed (most of
 * what converting that layout costs).
 */
import { RECALL_TABLE_COLUMNS, type RecallReply, type RecallTableReply, type WireFact, type WireTableCell } from '../protocol/index.ts';
import { fromWireFact } from './convert.ts';
import type { FactObject, FactStatus, RecalledFact, RecallResult, Source } from './types.ts';

export type AnyRecallReply = RecallReply | RecallTableReply;

export function isRecallTable(reply: AnyRecallReply): reply is RecallTableReply {
  return (reply as RecallTableReply).rows !== undefined;
}

/** The facts, domains and sequences of a recall reply; `missing` and `seqs` default to empty, `partial` only when true. */
export function fromRecallReply(reply: AnyRecallReply): RecallResult {
  const table = isRecallTable(reply);
  return {
    domains: reply.domains,
    facts: table ? tableFacts(reply) : reply.facts.map((f: WireFact) => fromWireFact(f)),
    missing: (table ? undefined : reply.missing) ?? [],
    seqs: reply.seqs ?? {},
    ...(reply.servedBy === undefined ? {} : { servedBy: reply.servedBy }),
    ...(reply.staleMs === undefined ? {} : { staleMs: reply.staleMs }),
    ...(reply.partial === true ? { partial: true as const } : {}),
  };
}

// Where each known column sits in a row as the fact is built: `RECALL_TABLE_COLUMNS`' order, derived from the list
// so that one list says the order. A reply in another order (a shard that added or reordered columns) is read by
// name: its rows are first put in this order (a column it lacks reads as absent).
const at = (name: (typeof RECALL_TABLE_COLUMNS)[number]): number => RECALL_TABLE_COLUMNS.indexOf(name);
const ID = at('id');
const TEXT = at('text');
const SUBJECT = at('subject');
const PREDICATE = at('predicate');
const OBJECT = at('object');
const CONFIDENCE = at('confidence');
const EFFECTIVE_CONFIDENCE = at('effectiveConfidence');
const SCORE = at('score');
const VALID_FROM = at('validFrom');
const VALID_TO = at('validTo');
const OBSERVED_AT = at('observedAt');
const RECORDED_AT = at('recordedAt');
const INVALIDATED_AT = at('invalidatedAt');
const REINFORCED_AT = at('reinforcedAt');
const CONFIRMATIONS = at('confirmations');
const STATUS = at('status');
const AGENT = at('agent');
const TASK = at('task');
const NODE = at('node');

/**
 * For each of `RECALL_TABLE_COLUMNS`, its index in `columns` (-1 when absent); undefined when that is every column
 * in this order (rows are read as they are: the common case, and always so when the reply left `columns` out).
 */
function columnPositions(columns: readonly string[] | undefined): number[] | undefined {
  if (columns === undefined) return undefined;
  const positions = RECALL_TABLE_COLUMNS.map((name, i) => (columns[i] === name ? i : columns.indexOf(name)));
  return positions.every((p, i) => p === i) ? undefined : positions;
}

/** A row in `RECALL_TABLE_COLUMNS`' order, from a reply whose columns sit at `positions`. */
function inKnownOrder(row: readonly WireTableCell[], positions: readonly number[]): WireTableCell[] {
  return positions.map((p) => (p < 0 ? null : row[p]!));
}

function tableFacts(reply: RecallTableReply): RecalledFact[] {
  const positions = columnPositions(reply.columns);
  const domain = reply.domains[0] ?? '';
  return reply.rows.map((row) => rowFact(positions === undefined ? row : inKnownOrder(row, positions), domain));
}

/**
 * One row (in `RECALL_TABLE_COLUMNS`' order) as the client's fact; null cells read as absent. Cells are read at
 * constant positions, not through a positions array: this runs for every recalled fact.
 */
function rowFact(row: readonly WireTableCell[], domain: string): RecalledFact {
  const subject = cell(row, SUBJECT);
  const predicate = cell(row, PREDICATE);
  const object = cell(row, OBJECT) as FactObject | undefined;
  const validTo = cell(row, VALID_TO);
  const invalidatedAt = cell(row, INVALIDATED_AT);
  // The two shapes most facts have (a triple or none; open, not invalidated) are made in one literal each: V8
  // then allocates the fact whole, instead of growing it a property at a time. The keys and their order are
  // those the general build below gives for the same fact.
  if (validTo === undefined && invalidatedAt === undefined) {
    if (subject !== undefined && predicate !== undefined && object !== undefined) {
      return {
        id: cell(row, ID) as string,
        domain,
        text: cell(row, TEXT) as string,
        subject: subject as string,
        predicate: predicate as string,
        object,
        confidence: cell(row, CONFIDENCE) as number,
        validFrom: new Date(cell(row, VALID_FROM) as number),
        observedAt: new Date(cell(row, OBSERVED_AT) as number),
        recordedAt: new Date(cell(row, RECORDED_AT) as number),
        reinforcedAt: new Date(cell(row, REINFORCED_AT) as number),
        confirmations: cell(row, CONFIRMATIONS) as number,
        status: cell(row, STATUS) as FactStatus,
        source: source(cell(row, AGENT), cell(row, TASK), cell(row, NODE)),
        effectiveConfidence: cell(row, EFFECTIVE_CONFIDENCE) as number,
        score: cell(row, SCORE) as number,
      };
    }
    if (subject === undefined && predicate === undefined && object === undefined) {
      return {
        id: cell(row, ID) as string,
        domain,
        text: cell(row, TEXT) as string,
        confidence: cell(row, CONFIDENCE) as number,
        validFrom: new Date(cell(row, VALID_FROM) as number),
        observedAt: new Date(cell(row, OBSERVED_AT) as number),
        recordedAt: new Date(cell(row, RECORDED_AT) as number),
        reinforcedAt: new Date(cell(row, REINFORCED_AT) as number),
        confirmations: cell(row, CONFIRMATIONS) as number,
        status: cell(row, STATUS) as FactStatus,
        source: source(cell(row, AGENT), cell(row, TASK), cell(row, NODE)),
        effectiveConfidence: cell(row, EFFECTIVE_CONFIDENCE) as number,
        score: cell(row, SCORE) as number,
      };
    }
  }
  const f: Record<string, unknown> = { id: cell(row, ID), domain, text: cell(row, TEXT) };
  if (subject !== undefined) f['subject'] = subject;
  if (predicate !== undefined) f['predicate'] = predicate;
  if (object !== undefined) f['object'] = object;
  f['confidence'] = cell(row, CONFIDENCE);
  f['validFrom'] = new Date(cell(row, VALID_FROM) as number);
  if (validTo !== undefined) f['validTo'] = new Date(validTo as number);
  f['observedAt'] = new Date(cell(row, OBSERVED_AT) as number);
  f['recordedAt'] = new Date(cell(row, RECORDED_AT) as number);
  if (invalidatedAt !== undefined) f['invalidatedAt'] = new Date(invalidatedAt as number);
  f['reinforcedAt'] = new Date(cell(row, REINFORCED_AT) as number);
  f['confirmations'] = cell(row, CONFIRMATIONS);
  f['status'] = cell(row, STATUS) as FactStatus;
  f['source'] = source(cell(row, AGENT), cell(row, TASK), cell(row, NODE));
  f['effectiveConfidence'] = cell(row, EFFECTIVE_CONFIDENCE);
  f['score'] = cell(row, SCORE);
  return f as unknown as RecalledFact;
}

/** The row's value at position `i`; null reads as absent. */
function cell(row: readonly WireTableCell[], i: number): WireTableCell | undefined {
  return row[i] ?? undefined;
}

function source(agent: WireTableCell | undefined, task: WireTableCell | undefined, node: WireTableCell | undefined): Source {
  const s: { agent: string; task?: string; node?: string } = { agent: agent as string };
  if (task !== undefined) s.task = task as string;
  if (node !== undefined) s.node = node as string;
  return s;
}
