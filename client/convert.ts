/** Client API ↔ wire: `Date` ↔ ISO-8601 strings, optional lists ↔ arrays. */
import type { RememberReply, WireFact, WireFactInput, WireHistoryFact, WriteReply } from '../protocol/index.ts';
import type { Fact, FactInput, RecalledFact, RememberResult, WriteResult } from './types.ts';

/** Copies the keys whose value is defined, so nothing encodes as `null` or an absent-but-present key. */
export function defined<T extends object>(fields: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) out[k] = v;
  return out as T;
}

const iso = (d: Date | undefined): string | undefined => (d === undefined ? undefined : d.toISOString());
const date = (s: string | undefined): Date | undefined => (s === undefined ? undefined : new Date(s));

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
  const fact = defined<Fact>({
    id: w.id,
    domain: w.domain,
    text: w.text,
    subject: w.subject,
    predicate: w.predicate,
    object: w.object,
    confidence: w.confidence,
    validFrom: new Date(w.validFrom),
    validTo: date(w.validTo),
    observedAt: new Date(w.observedAt),
    recordedAt: new Date(w.recordedAt),
    invalidatedAt: date(w.invalidatedAt),
    reinforcedAt: new Date(w.reinforcedAt),
    confirmations: w.confirmations,
    status: w.status,
    source: w.source,
  });
  if (!('score' in w)) return fact;
  return { ...fact, effectiveConfidence: w.effectiveConfidence, score: w.score };
}

export function fromRememberReply(r: RememberReply, opId: string): RememberResult {
  return {
    domain: r.domain,
    seq: r.seq,
    factId: r.factId,
    status: r.status,
    superseded: r.superseded ?? [],
    duplicate: r.duplicate ?? false,
    opId,
  };
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
