/**
 * Validation of everything that enters the store: log entries (the leader calls `validateEntry` before appending,
 * so bad writes never reach the log), recall queries and store options. Each error names the field.
 */
import { ShardValidationError } from './errors.ts';
import type { BatchEntry, EntityInput, FactInput, LogEntry, PredicateSpec, RecallQuery, ShardStoreOptions } from './types.ts';

export const MAX_TEXT_BYTES = 16 * 1024;
export const MAX_NAME_LENGTH = 200;
export const MAX_LIMIT = 1000;
export const MAX_HOPS = 3;
/** Most entries one grouped log message (`BatchEntry`) may hold: a larger one is rejected whole. */
export const MAX_BATCH_ENTRIES = 4096;

export const DEFAULT_CONFIDENCE = 0.8;
export const DEFAULT_PREDICATE: PredicateSpec = { cardinality: 'many', halfLifeDays: 30 };
export const DEFAULT_RECALL_FLOOR = 0.05;
export const DEFAULT_LIMIT = 10;

// Control characters are reserved: index keys use \x1f as a separator.
function hasControl(s: string): boolean {
  // A loop, not a regex: every entry checks several names, and the regex call was most of validating one.
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x1f || c === 0x7f) return true;
  }
  return false;
}
const DOMAIN = /^[a-z0-9][a-z0-9_-]{0,63}$/;

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function fail(field: string, problem: string): never {
  throw new ShardValidationError(field, problem);
}

// The helpers take a field and a suffix (`fact` + `.subject`) joined only when they fail: building the name of every
// field checked was a string per field of every entry applied.
function name(x: unknown, field: string, sub = ''): string {
  if (typeof x !== 'string' || x.length === 0) fail(field + sub, 'must be a non-empty string');
  if (x.length > MAX_NAME_LENGTH) fail(field + sub, `must be at most ${MAX_NAME_LENGTH} characters`);
  if (hasControl(x)) fail(field + sub, 'must not contain control characters');
  return x;
}

function optionalName(x: unknown, field: string, sub = ''): void {
  if (x !== undefined) name(x, field, sub);
}

function time(x: unknown, field: string, sub = ''): void {
  if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) fail(field + sub, 'must be epoch milliseconds (a non-negative integer)');
}

function optionalTime(x: unknown, field: string, sub = ''): void {
  if (x !== undefined) time(x, field, sub);
}

function confidence(x: unknown, field: string, sub = ''): void {
  if (x === undefined) return;
  if (typeof x !== 'number' || !(x > 0 && x <= 1)) fail(field + sub, 'must be a number in (0, 1]');
}

function halfLife(x: unknown, field: string, sub = ''): void {
  if (x === undefined) return;
  if (typeof x !== 'number' || !Number.isFinite(x) || x <= 0) fail(field + sub, 'must be a positive number of days');
}

/** `s.trim() === ''` without trimming a copy: a text starting with a printable ASCII character (nearly all) is not blank. */
function isBlank(s: string): boolean {
  const c = s.length === 0 ? 0 : s.charCodeAt(0);
  return c > 32 && c < 127 ? false : s.trim().length === 0;
}

export function validateFactInput(fact: unknown, field = 'fact'): asserts fact is FactInput {
  if (!isObject(fact)) fail(field, 'must be an object');
  const text = fact['text'];
  if (typeof text !== 'string' || isBlank(text)) fail(`${field}.text`, 'must be a non-empty string');
  // A UTF-16 unit is at most 3 UTF-8 bytes: only long texts need counting.
  if (text.length * 3 > MAX_TEXT_BYTES && Buffer.byteLength(text) > MAX_TEXT_BYTES) fail(`${field}.text`, `must be at most ${MAX_TEXT_BYTES} bytes`);
  optionalName(fact['subject'], field, '.subject');
  optionalName(fact['predicate'], field, '.predicate');
  if (fact['predicate'] !== undefined && fact['subject'] === undefined) fail(`${field}.subject`, 'is required when predicate is given');
  const object = fact['object'];
  if (object !== undefined) {
    if (typeof object === 'string') {
      if (object.length === 0 || (object.length * 3 > 1024 && Buffer.byteLength(object) > 1024)) fail(`${field}.object`, 'must be 1..1024 bytes');
    } else if (isObject(object)) {
      name(object['entity'], field, '.object.entity');
    } else fail(`${field}.object`, 'must be a string or { entity: string }');
    if (fact['predicate'] === undefined) fail(`${field}.predicate`, 'is required when object is given');
  }
  confidence(fact['confidence'], field, '.confidence');
  optionalTime(fact['observedAt'], field, '.observedAt');
  optionalTime(fact['validFrom'], field, '.validFrom');
  optionalTime(fact['validTo'], field, '.validTo');
  const validTo = fact['validTo'] as number | undefined;
  const validFrom = (fact['validFrom'] ?? fact['observedAt']) as number | undefined;
  if (validTo !== undefined && validFrom !== undefined && validTo <= validFrom) fail(`${field}.validTo`, 'must be after validFrom');
  halfLife(fact['halfLifeDays'], field, '.halfLifeDays');
}

export function validateEntityInput(entity: unknown, field = 'entity'): asserts entity is EntityInput {
  if (!isObject(entity)) fail(field, 'must be an object');
  name(entity['id'], field, '.id');
  optionalName(entity['name'], field, '.name');
  optionalName(entity['type'], field, '.type');
  const aliases = entity['aliases'];
  if (aliases !== undefined) {
    if (!Array.isArray(aliases) || aliases.length > 100) fail(`${field}.aliases`, 'must be an array of at most 100 names');
    aliases.forEach((a, i) => name(a, `${field}.aliases[${i}]`));
  }
  const attributes = entity['attributes'];
  if (attributes !== undefined) {
    if (!isObject(attributes)) fail(`${field}.attributes`, 'must be an object');
    for (const [k, v] of Object.entries(attributes)) {
      name(k, `${field}.attributes key`);
      const ok = typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
      if (!ok) fail(`${field}.attributes.${k}`, 'must be a string, finite number or boolean');
    }
  }
}

/** The log level an entry says it was written at (level 4 and up: apply follows that level's rules for it). */
function writtenLevel(x: unknown): void {
  if (x !== undefined && (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 1)) fail('level', 'must be a positive integer');
}

/** Most store positions one prune entry covers: its whole range is one transaction's work. */
export const MAX_PRUNE_SPAN = 65_536;

/**
 * Checks a log entry's shape. Throws `ShardValidationError` naming the field; returns the entry typed.
 * @example validateEntry({ v: 1, op: 'assert', opId, recordedAt: Date.now(), source: { agent: 'a' }, fact: { text } })
 */
export function validateEntry(entry: unknown): LogEntry {
  if (!isObject(entry)) fail('entry', 'must be an object');
  if (entry['v'] !== 1) fail('v', 'must be 1');
  if (entry['op'] === 'batch') fail('op', "'batch' is a log message, not an entry: batches do not nest");
  name(entry['opId'], 'opId');
  time(entry['recordedAt'], 'recordedAt');
  const source = entry['source'];
  if (!isObject(source)) fail('source', 'must be an object');
  name(source['agent'], 'source.agent');
  optionalName(source['task'], 'source.task');
  optionalName(source['node'], 'source.node');
  switch (entry['op']) {
    case 'assert':
      validateFactInput(entry['fact']);
      if (entry['cardinality'] !== undefined && entry['cardinality'] !== 'one' && entry['cardinality'] !== 'many') fail('cardinality', "must be 'one' or 'many'");
      writtenLevel(entry['level']);
      break;
    case 'reinforce':
      name(entry['factId'], 'factId');
      confidence(entry['confidence'], 'confidence');
      optionalTime(entry['observedAt'], 'observedAt');
      break;
    case 'retract':
      name(entry['factId'], 'factId');
      optionalTime(entry['validTo'], 'validTo');
      break;
    case 'forget':
      name(entry['factId'], 'factId');
      break;
    case 'entity':
      validateEntityInput(entry['entity']);
      writtenLevel(entry['level']);
      break;
    case 'prune': {
      const from = entry['fromPosition'];
      const to = entry['toPosition'];
      if (typeof from !== 'number' || !Number.isSafeInteger(from) || from < 1) fail('fromPosition', 'must be a positive integer');
      if (typeof to !== 'number' || !Number.isSafeInteger(to) || to <= from) fail('toPosition', 'must be an integer above fromPosition');
      if (to - from > MAX_PRUNE_SPAN) fail('toPosition', `a prune covers at most ${MAX_PRUNE_SPAN} positions`);
      const days = entry['inactiveDays'];
      if (typeof days !== 'number' || !Number.isFinite(days) || days < 0) fail('inactiveDays', 'must be a number of days ≥ 0');
      if (entry['decayedBelow'] !== undefined) confidence(entry['decayedBelow'], 'decayedBelow');
      break;
    }
    case 'marker':
      if (entry['kind'] !== 'epoch' && entry['kind'] !== 'handoff') fail('kind', "must be 'epoch' or 'handoff'");
      if (typeof entry['epoch'] !== 'number' || !Number.isSafeInteger(entry['epoch']) || entry['epoch'] < 0) fail('epoch', 'must be a non-negative integer');
      name(entry['node'], 'node');
      optionalName(entry['to'], 'to');
      break;
    default:
      fail('op', "must be one of 'assert', 'reinforce', 'retract', 'forget', 'entity', 'marker', 'prune'");
  }
  return entry as unknown as LogEntry;
}

/**
 * What is wrong with a batch's envelope (`entries` not an array, empty, or over MAX_BATCH_ENTRIES), or undefined.
 * Its inner entries are checked one by one as they apply: a bad one is rejected alone.
 */
export function batchProblem(batch: BatchEntry): string | undefined {
  if (batch.v !== 1) return 'batch v must be 1';
  const entries: unknown = batch.entries;
  if (!Array.isArray(entries)) return 'batch entries must be an array';
  if (entries.length === 0) return 'batch entries must not be empty';
  if (entries.length > MAX_BATCH_ENTRIES) return `batch entries must be at most ${MAX_BATCH_ENTRIES} (got ${entries.length})`;
  return undefined;
}

export function validateRecallQuery(q: unknown): RecallQuery {
  if (!isObject(q)) fail('query', 'must be an object');
  const query = q['query'];
  if (query !== undefined && (typeof query !== 'string' || Buffer.byteLength(query) > MAX_TEXT_BYTES)) fail('query', `must be a string of at most ${MAX_TEXT_BYTES} bytes`);
  optionalName(q['subject'], 'subject');
  optionalName(q['predicate'], 'predicate');
  if ((typeof query !== 'string' || query.trim() === '') && q['subject'] === undefined) fail('query', 'or subject is required');
  optionalTime(q['asOf'], 'asOf');
  time(q['now'], 'now');
  if (q['minConfidence'] !== undefined && (typeof q['minConfidence'] !== 'number' || !(q['minConfidence'] >= 0 && q['minConfidence'] <= 1))) fail('minConfidence', 'must be a number in [0, 1]');
  const limit = q['limit'];
  if (limit !== undefined && (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)) fail('limit', `must be an integer in 1..${MAX_LIMIT}`);
  const hops = q['hops'];
  if (hops !== undefined && (typeof hops !== 'number' || !Number.isInteger(hops) || hops < 0 || hops > MAX_HOPS)) fail('hops', `must be an integer in 0..${MAX_HOPS}`);
  if (q['includeInactive'] !== undefined && typeof q['includeInactive'] !== 'boolean') fail('includeInactive', 'must be a boolean');
  return q as unknown as RecallQuery;
}

export interface ResolvedOptions {
  readonly path: string;
  readonly domain: string;
  readonly predicates: Readonly<Record<string, PredicateSpec>>;
  readonly defaultPredicate: PredicateSpec;
  readonly recallFloor: number;
  readonly durability: 'full' | 'meta' | 'none';
  readonly mapSize: number;
}

function predicateSpec(x: unknown, field: string): PredicateSpec {
  if (!isObject(x)) fail(field, 'must be an object');
  if (x['cardinality'] !== 'one' && x['cardinality'] !== 'many') fail(`${field}.cardinality`, "must be 'one' or 'many'");
  halfLife(x['halfLifeDays'], field, '.halfLifeDays');
  if (x['halfLifeDays'] === undefined) fail(`${field}.halfLifeDays`, 'is required');
  return { cardinality: x['cardinality'], halfLifeDays: x['halfLifeDays'] as number };
}

/** Defaults, then validation, in one place. */
export function resolveOptions(options: ShardStoreOptions): ResolvedOptions {
  if (!isObject(options)) fail('options', 'must be an object');
  if (typeof options.path !== 'string' || options.path === '') fail('path', 'must be a directory path');
  if (typeof options.domain !== 'string' || !DOMAIN.test(options.domain)) fail('domain', 'must match [a-z0-9][a-z0-9_-]{0,63}');
  // No prototype: a predicate named `constructor` or `toString` is looked up as a name, never as Object's member.
  const predicates = Object.create(null) as Record<string, PredicateSpec>;
  for (const [p, spec] of Object.entries(options.predicates ?? {})) predicates[p] = predicateSpec(spec, `predicates.${p}`);
  const defaultPredicate = options.defaultPredicate === undefined ? DEFAULT_PREDICATE : predicateSpec(options.defaultPredicate, 'defaultPredicate');
  const recallFloor = options.recallFloor ?? DEFAULT_RECALL_FLOOR;
  if (typeof recallFloor !== 'number' || !(recallFloor >= 0 && recallFloor < 1)) fail('recallFloor', 'must be a number in [0, 1)');
  const durability = options.durability ?? 'meta';
  if (durability !== 'full' && durability !== 'meta' && durability !== 'none') fail('durability', "must be 'full', 'meta' or 'none'");
  const mapSize = options.mapSize ?? 64 * 1024 ** 3;
  if (!Number.isSafeInteger(mapSize) || mapSize < 1024 * 1024) fail('mapSize', 'must be at least 1 MiB');
  return { path: options.path, domain: options.domain, predicates, defaultPredicate, recallFloor, durability, mapSize };
}
