/** Client API ↔ wire: `Date` ↔ ISO-8601 strings, optional lists ↔ arrays. */
import type { RememberReply, WireFact, WireFactInput, WireHistoryFact, WriteReply } from '../protocol/index.ts';
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

const iso = (d: Date | undefined): string | undefined => (d === undefined ? undefined : d.toISOString());

export function toWireFactInput(f: FactInput): WireFactInput {
  return defined<WireFactInput>({
    text: f.text,
    subject: f.subject,
    predicate: f.predicate,
    object: f.object,
    confidence: f.confidence,
    observedAt: iso(f.observedAt),
    validFrom: iso(f.validFrom),
    validTo: iso(f.validTo),
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
