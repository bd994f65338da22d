/**
 * The records the store writes, built with their fields in one fixed order (msgpack keeps insertion order, and
 * replicas must write identical bytes), and the index terms each fact is filed under.
 */
import { decodeValue, encodeValue } from './codec.ts';
import { hashSeparator, hashString } from './key-index.ts';
import { TERM_SEPARATOR } from './postings.ts';
import { normalizeText } from './text.ts';
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

export type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export function sourceRecord(s: Source): Source {
  const out: Mutable<Source> = { agent: s.agent };
  if (s.task !== undefined) out.task = s.task;
  if (s.node !== undefined) out.node = s.node;
  return out;
}

export function withChanges(f: Fact, changes: Partial<Mutable<Fact>>): Fact {
  return { ...f, ...changes };
}

/** Episodes as a positional msgpack tuple: field names repeated in every record were a third of the bytes. */
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

/**
 * What makes two asserts "the same fact": (subject, predicate, object) when there is an object, else
 * (subject, predicate, normalized text). The write path files active facts under a hash of it (`key-index.ts`) and
 * confirms a hit with `sameIdentity`.
 */
export function identityHash(subject: string | undefined, predicate: string | undefined, object: FactObject | undefined, text: string): number {
  let h = hashSeparator(hashString(subject ?? ''));
  h = hashSeparator(hashString(predicate ?? '', h));
  if (object === undefined) return hashNormalized(text, Math.imul(h ^ 35 /* # */, 0x01000193));
  if (typeof object === 'string') return hashNormalized(object, Math.imul(h ^ 61 /* = */, 0x01000193));
  return hashString(object.entity, Math.imul(h ^ 64 /* @ */, 0x01000193));
}

/**
 * `hashString(normalizeText(s), h)` without building the normalized string when `s` is ASCII (nearly always):
 * lower-case, runs of whitespace as one space, none at either end — what `normalizeText` does to ASCII.
 */
function hashNormalized(s: string, seed: number): number {
  let h = seed;
  let space = false;
  let started = false;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 128) return hashString(normalizeText(s), seed);
    if (c === 32 || (c >= 9 && c <= 13)) {
      space = started;
      continue;
    }
    if (space) {
      h = Math.imul(h ^ 32, 0x01000193);
      space = false;
    }
    if (c >= 65 && c <= 90) c += 32;
    h = Math.imul(h ^ c, 0x01000193);
    started = true;
  }
  return h;
}

export function sameIdentity(f: Fact, subject: string | undefined, predicate: string | undefined, object: FactObject | undefined, text: string): boolean {
  if (f.subject !== subject || f.predicate !== predicate) return false;
  const o = f.object;
  if (object === undefined) return o === undefined && normalizeText(f.text) === normalizeText(text);
  if (typeof object === 'string') return typeof o === 'string' && normalizeText(o) === normalizeText(object);
  return o !== undefined && typeof o !== 'string' && o.entity === object.entity;
}

/** The key of the active value of a `one` predicate: (subject, predicate). */
export function subjectPredicateHash(subject: string, predicate: string): number {
  return hashString(predicate, hashSeparator(hashString(subject)));
}

export const subjectTerm = (subject: string): string => 's:' + subject;
export const subjectPredicateTerm = (subject: string, predicate: string): string => 'p:' + subject + TERM_SEPARATOR + predicate;
export const objectEntityTerm = (entity: string): string => 'o:' + entity;
export const wordTerm = (word: string): string => 'w:' + word;

/** Index terms come in four kinds; the hot path hands their parts around instead of building the term string. */
export const WORD = 0;
export const SUBJECT = 1;
export const SUBJECT_PREDICATE = 2;
export const OBJECT_ENTITY = 3;
export type TermKind = typeof WORD | typeof SUBJECT | typeof SUBJECT_PREDICATE | typeof OBJECT_ENTITY;

/** The term string of a kind and its parts (`b` is the predicate of a SUBJECT_PREDICATE term, else ''). */
export function termName(kind: TermKind, a: string, b: string): string {
  switch (kind) {
    case WORD:
      return wordTerm(a);
    case SUBJECT:
      return subjectTerm(a);
    case SUBJECT_PREDICATE:
      return subjectPredicateTerm(a, b);
    case OBJECT_ENTITY:
      return objectEntityTerm(a);
  }
}

/** The kind and parts of a term string: the inverse of `termName`. */
export function termParts(term: string): { kind: TermKind; a: string; b: string } {
  const body = term.slice(2);
  switch (term.charCodeAt(0)) {
    case 119 /* w */:
      return { kind: WORD, a: body, b: '' };
    case 115 /* s */:
      return { kind: SUBJECT, a: body, b: '' };
    case 111 /* o */:
      return { kind: OBJECT_ENTITY, a: body, b: '' };
    default: {
      const at = body.indexOf(TERM_SEPARATOR);
      return { kind: SUBJECT_PREDICATE, a: body.slice(0, at), b: body.slice(at + 1) };
    }
  }
}
