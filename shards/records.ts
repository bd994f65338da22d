/**
 * The records the store writes, built with their fields in one fixed order (msgpack keeps insertion order, and
 * replicas must write identical bytes), and the index terms each fact is filed under.
 */
import { createHash } from 'node:crypto';
import { TERM_SEPARATOR } from './postings.ts';
import { normalizeText, termFrequencies, tokenize } from './text.ts';
import type { Fact, FactObject, FactStatus, Source } from './types.ts';

/** A raw observation with provenance: every assert leaves one, so a fact can say where it came from. */
export interface Episode {
  readonly id: string;
  readonly factId: string;
  readonly seq: number;
  readonly text: string;
  readonly source: Source;
  readonly observedAt: number;
  readonly recordedAt: number;
  readonly confidence: number;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export function sourceRecord(s: Source): Source {
  const out: Mutable<Source> = { agent: s.agent };
  if (s.task !== undefined) out.task = s.task;
  if (s.node !== undefined) out.node = s.node;
  return out;
}

function objectRecord(o: FactObject): FactObject {
  return typeof o === 'string' ? o : { entity: o.entity };
}

/** The canonical form of a fact: every field in declaration order, absent optionals left out. */
export function factRecord(f: Fact): Fact {
  const out: Mutable<Fact> = { id: f.id, domain: f.domain, text: f.text } as Mutable<Fact>;
  if (f.subject !== undefined) out.subject = f.subject;
  if (f.predicate !== undefined) out.predicate = f.predicate;
  if (f.object !== undefined) out.object = objectRecord(f.object);
  out.confidence = f.confidence;
  out.halfLifeDays = f.halfLifeDays;
  out.observedAt = f.observedAt;
  out.validFrom = f.validFrom;
  if (f.validTo !== undefined) out.validTo = f.validTo;
  if (f.latestValidFrom !== undefined) out.latestValidFrom = f.latestValidFrom;
  out.recordedAt = f.recordedAt;
  if (f.invalidatedAt !== undefined) out.invalidatedAt = f.invalidatedAt;
  out.reinforcedAt = f.reinforcedAt;
  out.confirmations = f.confirmations;
  out.source = sourceRecord(f.source);
  out.status = f.status;
  out.seq = f.seq;
  if (f.episodeId !== undefined) out.episodeId = f.episodeId;
  return out;
}

export function withChanges(f: Fact, changes: Partial<Mutable<Fact>>): Fact {
  return factRecord({ ...f, ...changes });
}

export function episodeRecord(e: Episode): Episode {
  return {
    id: e.id,
    factId: e.factId,
    seq: e.seq,
    text: e.text,
    source: sourceRecord(e.source),
    observedAt: e.observedAt,
    recordedAt: e.recordedAt,
    confidence: e.confidence,
  };
}

export function isActive(status: FactStatus): boolean {
  return status === 'active';
}

const MAX_IDENTITY_KEY = 200;

/**
 * What makes two asserts "the same fact": (subject, predicate, object) when there is an object, else
 * (subject, predicate, normalized text). Long keys are hashed so they fit an LMDB key.
 */
export function identityOf(subject: string | undefined, predicate: string | undefined, object: FactObject | undefined, text: string): string {
  const value =
    object === undefined ? '#' + normalizeText(text) : typeof object === 'string' ? '=' + normalizeText(object) : '@' + object.entity;
  const key = (subject ?? '') + TERM_SEPARATOR + (predicate ?? '') + TERM_SEPARATOR + value;
  return key.length <= MAX_IDENTITY_KEY ? key : 'h' + createHash('sha256').update(key).digest('hex');
}

export const subjectTerm = (subject: string): string => 's:' + subject;
export const subjectPredicateTerm = (subject: string, predicate: string): string => 'p:' + subject + TERM_SEPARATOR + predicate;
export const objectEntityTerm = (entity: string): string => 'o:' + entity;
export const wordTerm = (word: string): string => 'w:' + word;
export const activeKey = (subject: string, predicate: string): string => subject + TERM_SEPARATOR + predicate;

export interface TermPosting {
  readonly term: string;
  readonly tf: number;
  readonly len: number;
}

/** Every index term a (not forgotten) fact is filed under. Used when creating, forgetting, and rebuilding. */
export function factTerms(f: Pick<Fact, 'text' | 'subject' | 'predicate' | 'object'>): { terms: TermPosting[]; length: number } {
  const tokens = tokenize(f.text);
  const len = tokens.length;
  const terms: TermPosting[] = [];
  for (const [word, tf] of termFrequencies(tokens)) terms.push({ term: wordTerm(word), tf, len });
  if (f.subject !== undefined) {
    terms.push({ term: subjectTerm(f.subject), tf: 0, len: 0 });
    if (f.predicate !== undefined) terms.push({ term: subjectPredicateTerm(f.subject, f.predicate), tf: 0, len: 0 });
  }
  if (f.object !== undefined && typeof f.object !== 'string') terms.push({ term: objectEntityTerm(f.object.entity), tf: 0, len: 0 });
  return { terms, length: len };
}
