/**
 * Client API ↔ wire: `Date` ↔ ISO-8601 strings, optional lists ↔ arrays. The types guard a TypeScript caller; a
 * plain-JS one, or facts built from a model's JSON, can pass anything, so what the client itself reads (a time, the
 * text, the names) is checked here and refused as the server refuses: BAD_REQUEST naming the field. Ranges and
 * formats are left to the server, which checks them anyway.
 */
import { ErrorCode, ShardmindError, type RememberReply, type WireFact, type WireFactInput, type WireHistoryFact, type WriteReply } from '../protocol/index.ts';
import type { Fact, FactInput, RecalledFact, RememberResult, WriteResult } from './types.ts';

/** Copies the keys whose value is defined, so nothing encodes as `null` or an absent-but-present key. */
export function defined<T extends object>(fields: T): T {
  const out: Record<string, unknown> = {};
  // `for…in` over a literal's own keys, not `Object.entries`: no array of pairs per call (a recall body has 17).
  for (const k in fields) {
    const v = fields[k];
    if (v !== undefined) out[k] = v;
  }
  return out as T;
}

/** A refusal of the caller's input, worded as the server words its own: `field: problem, got value`. */
export function badRequest(field: string, problem: string, ...got: [unknown] | []): ShardmindError {
  return new ShardmindError(ErrorCode.BAD_REQUEST, got.length > 0 ? `${field}: ${problem}, got ${shown(got[0])}` : `${field}: ${problem}`);
}

function shown(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (value instanceof Date) return 'an invalid Date';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object';
  return `${typeof value} ${String(value)}`;
}

/** A time for the wire: a Date, or an ISO-8601 string passed on as it is (the server checks its form and zone). */
export function wireTime(value: Date | string | undefined, field: string): string | undefined {
  if (value === undefined || typeof value === 'string') return value;
  if (value instanceof Date && !Number.isNaN(value.getTime())) return value.toISOString();
  throw badRequest(field, 'must be a Date or an ISO-8601 string with a zone', value);
}

/** An optional name (subject, predicate, domain …): a string when present. */
export function optionalString(value: unknown, field: string): void {
  if (value !== undefined && typeof value !== 'string') throw badRequest(field, 'must be a string', value);
}

export function toWireFactInput(f: FactInput): WireFactInput {
  if (typeof f !== 'object' || f === null) throw badRequest('fact', 'must be an object', f);
  if (typeof f.text !== 'string') throw badRequest('fact.text', f.text === undefined ? 'required (a string)' : 'must be a string', f.text);
  optionalString(f.subject, 'fact.subject');
  optionalString(f.predicate, 'fact.predicate');
  const o: unknown = f.object;
  if (o !== undefined && typeof o !== 'string' && (typeof o !== 'object' || o === null || typeof (o as { entity?: unknown }).entity !== 'string')) {
    throw badRequest('fact.object', 'must be a string or { entity: string }', o);
  }
  return defined<WireFactInput>({
    text: f.text,
    subject: f.subject,
    predicate: f.predicate,
    object: f.object,
    confidence: f.confidence,
    observedAt: wireTime(f.observedAt, 'fact.observedAt'),
    validFrom: wireTime(f.validFrom, 'fact.validFrom'),
    validTo: wireTime(f.validTo, 'fact.validTo'),
    halfLifeDays: f.halfLifeDays,
  });
}

// The recalled overload first: a WireFact is also a WireHistoryFact, and overloads match in order.
export function fromWireFact(w: WireFact): RecalledFact;
export function fromWireFact(w: WireHistoryFact): Fact;
export function fromWireFact(w: WireFact | WireHistoryFact): Fact | RecalledFact {
  // Built field by field in one object (a recall converts ten of these per reply; copying through `defined` and a
  // spread for the recalled fields cost more than the dates).
  const f: Record<string, unknown> = { id: w.id, domain: w.domain, text: w.text };
  if (w.subject !== undefined) f['subject'] = w.subject;
  if (w.predicate !== undefined) f['predicate'] = w.predicate;
  if (w.object !== undefined) f['object'] = w.object;
  f['confidence'] = w.confidence;
  f['validFrom'] = new Date(w.validFrom);
  if (w.validTo !== undefined) f['validTo'] = new Date(w.validTo);
  f['observedAt'] = new Date(w.observedAt);
  f['recordedAt'] = new Date(w.recordedAt);
  if (w.invalidatedAt !== undefined) f['invalidatedAt'] = new Date(w.invalidatedAt);
  f['reinforcedAt'] = new Date(w.reinforcedAt);
  f['confirmations'] = w.confirmations;
  f['status'] = w.status;
  f['source'] = w.source;
  if ('score' in w) {
    f['effectiveConfidence'] = w.effectiveConfidence;
    f['score'] = w.score;
  }
  return f as unknown as Fact | RecalledFact;
}

export function fromRememberReply(r: RememberReply, opId: string): RememberResult {
  const result: RememberResult = {
    domain: r.domain,
    seq: r.seq,
    factId: r.factId,
    status: r.status,
    superseded: r.superseded ?? [],
    duplicate: r.duplicate ?? false,
    opId,
  };
  return r.warning === undefined ? result : { ...result, warning: r.warning };
}

export function fromWriteReply(r: WriteReply, opId: string): WriteResult {
  return {
    domain: r.domain,
    seq: r.seq,
    factId: r.factId,
    status: r.status,
    duplicate: r.duplicate ?? false,
    opId,
  };
}
