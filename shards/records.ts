/**
 * The records the store writes, built with their fields in one fixed order (msgpack keeps insertion order, and
 * replicas must write identical bytes), and the index terms each fact is filed under.
 */
import { createHash } from 'node:crypto';
import { decodeValue, encodeValue } from './codec.ts';
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

export function withChanges(f: Fact, changes: Partial<Mutable<Fact>>): Fact {
  return { ...f, ...changes };
}

/**
 * Facts are stored as a positional tuple, not a map: field names repeated in a million records were a third of
 * the data file and of the encoding time. Absent optionals are `null`, so one fact has exactly one encoding.
 * The order below is the format (version 1); add fields at the end only.
 */
type FactTuple = [
  1,
  string, string, string, string | null, string | null, FactObject | null,
  number, number, number, number, number | null, number | null, number, number | null, number, number,
  string, string | null, string | null, FactStatus, number, string | null,
];

export function encodeFact(f: Fact): Buffer {
  const o = f.object;
  const tuple: FactTuple = [
    1,
    f.id, f.domain, f.text, f.subject ?? null, f.predicate ?? null,
    o === undefined ? null : typeof o === 'string' ? o : { entity: o.entity },
    f.confidence, f.halfLifeDays, f.observedAt, f.validFrom, f.validTo ?? null, f.latestValidFrom ?? null,
    f.recordedAt, f.invalidatedAt ?? null, f.reinforcedAt, f.confirmations,
    f.source.agent, f.source.task ?? null, f.source.node ?? null, f.status, f.seq, f.episodeId ?? null,
  ];
  return encodeValue(tuple);
}

export function decodeFact(bytes: Uint8Array): Fact {
  const t = decodeValue<FactTuple>(bytes);
  const source: Mutable<Source> = { agent: t[17] };
  if (t[18] !== null) source.task = t[18];
  if (t[19] !== null) source.node = t[19];
  const f: Mutable<Fact> = { id: t[1], domain: t[2], text: t[3] } as Mutable<Fact>;
  if (t[4] !== null) f.subject = t[4];
  if (t[5] !== null) f.predicate = t[5];
  if (t[6] !== null) f.object = t[6];
  f.confidence = t[7];
  f.halfLifeDays = t[8];
  f.observedAt = t[9];
  f.validFrom = t[10];
  if (t[11] !== null) f.validTo = t[11];
  if (t[12] !== null) f.latestValidFrom = t[12];
  f.recordedAt = t[13];
  if (t[14] !== null) f.invalidatedAt = t[14];
  f.reinforcedAt = t[15];
  f.confirmations = t[16];
  f.source = source;
  f.status = t[20];
  f.seq = t[21];
  if (t[22] !== null) f.episodeId = t[22];
  return f;
}

/** Episodes as a positional tuple too (see `encodeFact`). */
export function encodeEpisode(e: Episode): Buffer {
  return encodeValue([1, e.id, e.factId, e.seq, e.text, e.source.agent, e.source.task ?? null, e.source.node ?? null, e.observedAt, e.recordedAt, e.confidence]);
}

export function decodeEpisode(bytes: Uint8Array): Episode {
  const t = decodeValue<[1, string, string, number, string, string, string | null, string | null, number, number, number]>(bytes);
  const source: Mutable<Source> = { agent: t[5] };
  if (t[6] !== null) source.task = t[6];
  if (t[7] !== null) source.node = t[7];
  return { id: t[1], factId: t[2], seq: t[3], text: t[4], source, observedAt: t[8], recordedAt: t[9], confidence: t[10] };
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

/** Every index term a (not forgotten) fact is filed under. Used when forgetting and in tests. */
export function factTerms(f: Pick<Fact, 'text' | 'subject' | 'predicate' | 'object'>): { terms: TermPosting[]; length: number } {
  const terms: TermPosting[] = [];
  const length = forEachFactTerm(f, (term, tf, len) => terms.push({ term, tf, len }));
  return { terms, length };
}

/** Up to this many tokens, term frequencies are counted by scanning the token array instead of building a Map. */
const SMALL_TEXT_TOKENS = 32;

/**
 * Calls `emit` for every index term of a fact (words in first-occurrence order with their frequency, then subject,
 * subject+predicate, object entity) and returns the number of word tokens. The hot path of every assert, so it
 * allocates no per-term objects.
 */
export function forEachFactTerm(f: Pick<Fact, 'text' | 'subject' | 'predicate' | 'object'>, emit: (term: string, tf: number, len: number) => void): number {
  const tokens = tokenize(f.text);
  const len = tokens.length;
  if (len <= SMALL_TEXT_TOKENS) {
    outer: for (let i = 0; i < len; i++) {
      const word = tokens[i]!;
      for (let j = 0; j < i; j++) if (tokens[j] === word) continue outer;
      let tf = 1;
      for (let j = i + 1; j < len; j++) if (tokens[j] === word) tf++;
      emit(wordTerm(word), tf, len);
    }
  } else {
    for (const [word, tf] of termFrequencies(tokens)) emit(wordTerm(word), tf, len);
  }
  if (f.subject !== undefined) {
    emit(subjectTerm(f.subject), 0, 0);
    if (f.predicate !== undefined) emit(subjectPredicateTerm(f.subject, f.predicate), 0, 0);
  }
  if (f.object !== undefined && typeof f.object !== 'string') emit(objectEntityTerm(f.object.entity), 0, 0);
  return len;
}
