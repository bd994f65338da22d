/**
 * Wire ↔ shard conversions. The wire speaks ISO-8601 strings and the contract's field names; `shards/` speaks
 * epoch milliseconds. Inputs here were already validated by `validate.ts`, so a bad timestamp is a bug (INTERNAL).
 */
import type { ApplyResult, Entity, Fact, FactInput, RecallQuery, RecalledFact } from '../shards/index.ts';
import { ErrorCode, ShardmindError } from './errors.ts';
import { timestampMs } from './fields.ts';
import type {
  WireEntity,
  RecallRequest,
  RememberReply,
  RememberStatus,
  WireFact,
  WireFactInput,
  WireSource,
  WriteReply,
} from './wire.ts';

/** A fact as history returns it: no score, no decay. */
export type WireHistoryFact = Omit<WireFact, 'score' | 'effectiveConfidence'>;

/** ISO-8601 → epoch ms. */
export function isoToMs(iso: string): number {
  return timestampMs(iso, 'timestamp');
}

/**
 * Recent conversions. A fact's four timestamps are mostly equal, and the same facts come back recall after recall:
 * `toISOString` (a Date per call) was ~5% of a recall's host CPU, a Map hit is a fraction of that. Cleared when
 * full, so it stays small.
 */
const isoCache = new Map<number, string>();
const ISO_CACHE_MAX = 8192;

/** Epoch ms → `2026-11-24T10:00:00.000Z`. */
export function msToIso(ms: number): string {
  let iso = isoCache.get(ms);
  if (iso === undefined) {
    iso = new Date(ms).toISOString();
    if (isoCache.size >= ISO_CACHE_MAX) isoCache.clear();
    isoCache.set(ms, iso);
  }
  return iso;
}

function optionalMs(iso: string | undefined): number | undefined {
  return iso === undefined ? undefined : isoToMs(iso);
}

/** Copies the keys whose value is defined, so the result has no `undefined` members to encode. */
function defined<T extends object>(fields: T): T {
  const out: Record<string, unknown> = {};
  for (const k in fields) {
    const v = fields[k];
    if (v !== undefined) out[k] = v;
  }
  return out as T;
}

/** A validated wire fact as the store's `FactInput`. */
export function toFactInput(f: WireFactInput): FactInput {
  return defined<FactInput>({
    text: f.text,
    subject: f.subject,
    predicate: f.predicate,
    object: f.object,
    confidence: f.confidence,
    observedAt: optionalMs(f.observedAt),
    validFrom: optionalMs(f.validFrom),
    validTo: optionalMs(f.validTo),
    halfLifeDays: f.halfLifeDays,
  });
}

/** A validated recall request as the store's query, read at `now`; `limit` clamped to the shard's maximum. */
export function toRecallQuery(req: RecallRequest, now: number, maxLimit?: number): RecallQuery {
  const limit = req.limit !== undefined && maxLimit !== undefined ? Math.min(req.limit, maxLimit) : req.limit;
  return defined<RecallQuery>({
    query: req.query,
    subject: req.subject,
    predicate: req.predicate,
    asOf: optionalMs(req.asOf),
    minConfidence: req.minConfidence,
    limit,
    hops: req.hops,
    includeInactive: req.includeInactive,
    now,
  });
}

function wireSource(s: Fact['source']): WireSource {
  const out: { agent: string; task?: string; node?: string } = { agent: s.agent };
  if (s.task !== undefined) out.task = s.task;
  if (s.node !== undefined) out.node = s.node;
  return out;
}

type MutableWireFact = { -readonly [K in keyof WireFact]: WireFact[K] };

/**
 * A recalled fact (with score and decay) or a stored one (history, get) as it travels on the wire. Built as one
 * object, optional fields only when present, in the contract's field order: this runs for every fact of every
 * read reply, so no intermediate copies.
 */
export function toWireFact(f: RecalledFact): WireFact;
export function toWireFact(f: Fact): WireHistoryFact;
export function toWireFact(f: Fact | RecalledFact): WireFact | WireHistoryFact {
  const w = { id: f.id, domain: f.domain, text: f.text } as Partial<MutableWireFact>;
  if (f.subject !== undefined) w.subject = f.subject;
  if (f.predicate !== undefined) w.predicate = f.predicate;
  if (f.object !== undefined) w.object = f.object;
  w.confidence = f.confidence;
  w.validFrom = msToIso(f.validFrom);
  if (f.validTo !== undefined) w.validTo = msToIso(f.validTo);
  w.observedAt = msToIso(f.observedAt);
  w.recordedAt = msToIso(f.recordedAt);
  if (f.invalidatedAt !== undefined) w.invalidatedAt = msToIso(f.invalidatedAt);
  w.reinforcedAt = msToIso(f.reinforcedAt);
  w.confirmations = f.confirmations;
  w.status = f.status;
  w.source = wireSource(f.source);
  if ('score' in f) {
    w.effectiveConfidence = f.effectiveConfidence;
    w.score = f.score;
  }
  return w as WireFact | WireHistoryFact;
}

/**
 * Throws the error a rejected apply carries. The store applies a write that names a missing fact as a
 * deterministic no-op (`status: 'rejected'`); the caller gets the reason as a typed error.
 */
function throwIfRejected(r: ApplyResult): void {
  if (r.status !== 'rejected') return;
  const code = r.error?.code === 'NOT_FOUND' ? ErrorCode.NOT_FOUND : ErrorCode.BAD_REQUEST;
  throw new ShardmindError(code, r.error?.message ?? `operation ${r.opId} was rejected by the shard`);
}

const REMEMBER_STATUSES: readonly string[] = ['created', 'reinforced', 'superseded_previous', 'recorded_superseded'];

/** The wire status of a remember's apply result; a rejected apply is thrown as its error. */
export function rememberStatus(r: ApplyResult): RememberStatus {
  throwIfRejected(r);
  if (!REMEMBER_STATUSES.includes(r.status)) {
    throw new ShardmindError(ErrorCode.INTERNAL, `remember applied with unexpected status "${r.status}"`);
  }
  return r.status as RememberStatus;
}

/** The reply to a remember, from the apply result (a retried opId returns the original result, `duplicate`). */
export function rememberReply(domain: string, r: ApplyResult): RememberReply {
  const status = rememberStatus(r);
  return defined<RememberReply>({
    v: 1,
    domain,
    seq: r.seq,
    factId: requireFactId(r),
    status,
    superseded: r.supersededIds && r.supersededIds.length > 0 ? [...r.supersededIds] : undefined,
    duplicate: r.duplicate ? true : undefined,
  });
}

/** The reply to a forget or retract, from the apply result. */
export function writeReply(domain: string, r: ApplyResult): WriteReply {
  throwIfRejected(r);
  if (r.status !== 'forgotten' && r.status !== 'retracted') {
    throw new ShardmindError(ErrorCode.INTERNAL, `forget/retract applied with unexpected status "${r.status}"`);
  }
  return defined<WriteReply>({
    v: 1,
    domain,
    seq: r.seq,
    factId: requireFactId(r),
    status: r.status,
    duplicate: r.duplicate ? true : undefined,
  });
}

export function requireFactId(r: ApplyResult): string {
  if (r.factId === undefined) {
    throw new ShardmindError(ErrorCode.INTERNAL, `apply result for ${r.opId} (${r.status}) has no factId`);
  }
  return r.factId;
}

/** An entity as the wire shows it (times as ISO strings). */
export function toWireEntity(e: Entity): WireEntity {
  return defined<WireEntity>({
    id: e.id,
    name: e.name,
    type: e.type,
    aliases: [...e.aliases],
    attributes: { ...e.attributes },
    updatedAt: msToIso(e.updatedAt),
  });
}
