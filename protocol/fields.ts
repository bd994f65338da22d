/**
 * Small composable field checkers for the edge. Each takes the raw decoded value and its path in the request
 * (`fact.confidence`) and returns the typed value or throws `BAD_REQUEST` with a message that names the path, the
 * rule and what was sent: `fact.confidence: must be a number in 0..1, got "high"`.
 *
 * `null` counts as absent for optional fields: Swift, Go and Python encoders often write `null` for an unset value.
 */
import { badRequest } from './errors.ts';
import { CONTROL_CHARS, LIMITS, SAFE_ID } from './limits.ts';

/** A surrogate code unit not part of a pair: with the `u` flag, paired ones read as one astral code point. */
const LONE_SURROGATE = /\p{Cs}/u;
import { DOMAIN_NAME } from './subjects.ts';

/** A checker: raw value and its path in, typed value out, or a BAD_REQUEST thrown. */
export type Check<T> = (value: unknown, path: string) => T;

/** A short, safe rendering of what the caller sent, for error messages. */
export function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  // Past 2^53 a number is already rounded when decoded: echoing it would show a value the caller never sent.
  if (typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value)) {
    return `a number beyond 2^53 (about ${value.toExponential(2)}), which JSON and msgpack readers round`;
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Uint8Array) return `binary (${value.length} bytes)`;
  if (value instanceof Date) return `a timestamp`;
  if (Array.isArray(value)) return `an array`;
  if (isRecord(value)) return 'an object';
  if (typeof value === 'object') return 'a non-map msgpack value';
  return typeof value;
}

function fail(path: string, rule: string, value: unknown): never {
  throw badRequest(path, `${rule}, got ${describe(value)}`);
}

/** A plain object (a msgpack map or JSON object), not an array, binary, timestamp or decoder oddity. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export const record: Check<Record<string, unknown>> = (value, path) =>
  isRecord(value) ? value : fail(path, 'must be an object', value);

/** Makes a checker accept absence (`undefined` or `null`) as `undefined`. */
export function optional<T>(check: Check<T>): Check<T | undefined> {
  return (value, path) => (value === undefined || value === null ? undefined : check(value, path));
}

export interface StringRule {
  readonly max: number;
  /** Characters allowed, as a whole-string pattern, and how to say it in an error. */
  readonly pattern?: RegExp;
  readonly patternHint?: string;
  /** Whether an empty (or all-whitespace) string is allowed. Default false. */
  readonly allowEmpty?: boolean;
}

/** A string within `max` characters; no control characters; optionally matching a pattern. */
export function string(rule: StringRule): Check<string> {
  return (value, path) => {
    if (typeof value !== 'string') return fail(path, 'must be a string', value);
    if (!rule.allowEmpty && value.trim() === '') return fail(path, 'must be a non-empty string', value);
    if (value.length > rule.max) {
      throw badRequest(path, `must be at most ${rule.max} characters, got ${value.length}`);
    }
    if (rule.pattern && !rule.pattern.test(value)) {
      return fail(path, `must be ${rule.patternHint ?? `match ${String(rule.pattern)}`}`, value);
    }
    if (!rule.pattern && CONTROL_CHARS.test(value)) return fail(path, 'must not contain control characters', value);
    // A lone UTF-16 surrogate (JSON's "\ud800") has no UTF-8 form: msgpack would store it as U+FFFD, so the text read
    // back would not be the text sent.
    if (!rule.pattern && LONE_SURROGATE.test(value)) return fail(path, 'must be valid Unicode (it holds a lone UTF-16 surrogate)', value);
    return value;
  };
}

/** Free text (a fact, a query): up to `LIMITS.textChars`. */
export const text = string({ max: LIMITS.textChars });
/** An entity name or alias, or a predicate. */
export const name = string({ max: LIMITS.nameChars });
/** A literal object value. */
export const literal = string({ max: LIMITS.literalChars });
/** An id of safe characters (agent, node, opId, factId). */
export const id = string({
  max: LIMITS.idChars,
  pattern: SAFE_ID,
  patternHint: 'an id of letters, digits and _ - . : @ = (starting with a letter, digit or _)',
});
export const domainName = string({
  max: 32,
  pattern: DOMAIN_NAME,
  patternHint: 'a domain name: lowercase letters, digits and _, starting with a letter, at most 32',
});

export interface NumberRule {
  readonly min: number;
  readonly max: number;
  readonly integer?: boolean;
  /** How the range reads in an error, when `min..max` would not read well (a fraction like 1/24). */
  readonly range?: string;
}

/** A finite number (an integer when asked) in `min..max` inclusive. */
export function number(rule: NumberRule): Check<number> {
  const range = rule.range ?? `${rule.min}..${rule.max === Number.MAX_SAFE_INTEGER ? '' : rule.max}`;
  const rulename = rule.integer ? `an integer in ${range}` : `a number in ${range}`;
  return (value, path) => {
    const ok =
      typeof value === 'number' &&
      Number.isFinite(value) &&
      value >= rule.min &&
      value <= rule.max &&
      (!rule.integer || Number.isInteger(value));
    return ok ? (value as number) : fail(path, `must be ${rulename}`, value);
  };
}

/** A probability or a minimum confidence. */
export const unit = number({ min: 0, max: 1 });
/**
 * A fact's confidence: above 0 and at most 1, as the store requires (`shards/validate.ts`). Checked here so a 0 is
 * refused before the write reaches the log, not after.
 */
export const confidence: Check<number> = (value, path) =>
  typeof value === 'number' && value > 0 && value <= 1 ? value : fail(path, 'must be a number in (0, 1]', value);
/** A log sequence number. */
export const seq = number({ min: 0, max: Number.MAX_SAFE_INTEGER, integer: true, range: '0..2^53 - 1' });

export const boolean: Check<boolean> = (value, path) =>
  typeof value === 'boolean' ? value : fail(path, 'must be true or false', value);

/** One of a fixed set of strings. */
export function oneOf<const T extends string>(values: readonly T[]): Check<T> {
  const list = values.map((v) => JSON.stringify(v)).join(', ');
  return (value, path) =>
    typeof value === 'string' && (values as readonly string[]).includes(value)
      ? (value as T)
      : fail(path, `must be one of ${list}`, value);
}

/** An array of at most `max` items, each checked at `path[i]`. */
export function list<T>(item: Check<T>, max: number): Check<T[]> {
  return (value, path) => {
    if (!Array.isArray(value)) return fail(path, 'must be an array', value);
    if (value.length > max) throw badRequest(path, `must have at most ${max} items, got ${value.length}`);
    return value.map((v, i) => item(v, `${path}[${i}]`));
  };
}

// ISO-8601 with a date, optionally a time, and a zone whenever there is a time: "2026-11-24", "2026-11-24T10:00Z",
// "2026-11-24T10:00:00.123+01:00". A time without a zone is refused: its meaning would depend on the host's zone.
const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}:?\d{2}))?$/;
const ISO_HINT = 'an ISO-8601 timestamp with a zone, like "2026-11-24T10:00:00Z"';

/** Milliseconds since the epoch of an ISO-8601 timestamp (or a msgpack timestamp, decoded as a Date). */
export const timestampMs: Check<number> = (value, path) => {
  let ms = Number.NaN;
  if (value instanceof Date) ms = value.getTime();
  else if (typeof value === 'string' && value.length <= 40 && ISO_8601.test(value) && isCalendarDate(value)) {
    // Date.parse reads only up to milliseconds; longer fractions are cut so it does not reject them.
    ms = Date.parse(value.replace(/(\.\d{3})\d+/, '$1').replace(' ', 'T'));
  }
  if (!Number.isFinite(ms) || ms < 0 || ms > MAX_TIME_MS) return fail(path, `must be ${ISO_HINT}`, value);
  return ms;
};

/** Date.parse rolls "2026-02-30" over to March 2; a wrong day is a mistake worth reporting. */
function isCalendarDate(iso: string): boolean {
  const y = Number(iso.slice(0, 4));
  const m = Number(iso.slice(5, 7));
  const d = Number(iso.slice(8, 10));
  return m >= 1 && m <= 12 && d >= 1 && new Date(Date.UTC(y, m - 1, d)).getUTCDate() === d;
}

/** Year 9999: later dates are typos, and larger numbers lose precision in some clients. */
const MAX_TIME_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** An ISO-8601 timestamp, normalized to the canonical UTC form `2026-11-24T10:00:00.000Z`. */
export const timestamp: Check<string> = (value, path) => new Date(timestampMs(value, path)).toISOString();

/** `{ "<domain>": seq }`: the read-your-writes map. */
export const seqMap: Check<Record<string, number>> = (value, path) => {
  const obj = record(value, path);
  const keys = Object.keys(obj);
  if (keys.length > LIMITS.domainsPerRequest) {
    throw badRequest(path, `must name at most ${LIMITS.domainsPerRequest} domains, got ${keys.length}`);
  }
  const out: Record<string, number> = {};
  for (const key of keys) {
    domainName(key, `${path} key`);
    out[key] = seq(obj[key], `${path}.${key}`);
  }
  return out;
};
