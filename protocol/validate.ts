/**
 * The guard at the edge: one parse function per request type in `wire.ts`. Each takes the decoded body (anything a
 * caller could send) and returns a well-typed request, or throws `ShardmindError(BAD_REQUEST)` naming the field and
 * the problem. Inner code (shard actors, the router) trusts what these return.
 *
 * Rules: `v` must be 1; unknown fields are ignored (a newer client may send more) and are not copied into the
 * result; known fields with the wrong type are errors; `null` is the same as absent for optional fields;
 * timestamps come back normalized to `2026-11-24T10:00:00.000Z`. Size is checked before decoding (`checkSize`).
 */
import { ErrorCode, ShardmindError, badRequest } from './errors.ts';
import {
  boolean,
  domainName,
  id,
  isRecord,
  list,
  literal,
  name,
  number,
  optional,
  record,
  seqMap,
  string,
  text,
  timestamp,
  timestampMs,
  unit,
  confidence,
  describe,
} from './fields.ts';
import { parseKnownColumns, parseRecallLayout } from './fact-table.ts';
import { LIMITS, TASK_ID } from './limits.ts';
import type { Check } from './fields.ts';
import type {
  ClassifyRequest,
  EntityRequest,
  LookupRequest,
  WireEntityInput,
  ForgetRequest,
  GetRequest,
  HistoryRequest,
  RecallLayout,
  RecallRequest,
  RememberBatchItem,
  RememberBatchRequest,
  RememberRequest,
  RetractRequest,
  TaskBeginRequest,
  TaskEndRequest,
  TaskObserveRequest,
  TaskRerouteRequest,
  WireFactInput,
  WireObject,
} from './wire.ts';

/** Throws TOO_LARGE when a payload is over the limit; checked before decoding so a huge body costs nothing. */
export function checkSize(data: Uint8Array | number, limit: number): void {
  const size = typeof data === 'number' ? data : data.length;
  if (size > limit) {
    throw new ShardmindError(ErrorCode.TOO_LARGE, `payload is ${size} bytes; the limit is ${limit} bytes`);
  }
}

const taskId = string({
  max: LIMITS.idChars,
  pattern: TASK_ID,
  patternHint: 'a task id of letters, digits and _ - =',
});
const halfLifeDays = number({ min: LIMITS.halfLifeDaysMin, max: LIMITS.halfLifeDaysMax, range: `1/24 (an hour)..${LIMITS.halfLifeDaysMax} days` });
const recallLimit = number({ min: 1, max: LIMITS.recallLimit, integer: true });
const hops = number({ min: 0, max: LIMITS.hops, integer: true });
const historyLimit = number({ min: 1, max: LIMITS.historyLimit, integer: true });
/** A history reply's `next`: a log position, so a positive integer. */
const historyCursor = number({ min: 1, max: Number.MAX_SAFE_INTEGER, integer: true });
/** Replica reads: how stale the answer may be, in ms. */
const maxStaleMs = number({ min: 0, max: Number.MAX_SAFE_INTEGER, integer: true });

/** The body as an object with `v: 1`; the first check every parser makes. */
function envelope(body: unknown): Record<string, unknown> {
  if (!isRecord(body)) throw badRequest('body', `must be an object with "v": 1, got ${describe(body)}`);
  if (body['v'] !== 1) throw badRequest('v', `must be 1, got ${describe(body['v'])}`);
  return body;
}

/** Copies only the fields that are present, so absent optionals stay absent (not `undefined` keys). */
function compact<T extends object>(fields: T): T {
  const out: Record<string, unknown> = {};
  // `for…in` over a literal's own keys, not `Object.entries`: no array of pairs per request.
  for (const k in fields) {
    const v = fields[k];
    if (v !== undefined) out[k] = v;
  }
  return out as T;
}

// Optional checkers made once, not per request (`optional(x)` builds a closure): a remember is checked with nine.
const optionalId = optional(id);
const optionalTaskId = optional(taskId);
const optionalDomainName = optional(domainName);
const optionalName = optional(name);
const optionalConfidence = optional(confidence);
const optionalTimestamp = optional(timestamp);
const optionalHalfLifeDays = optional(halfLifeDays);

function parseObject(value: unknown, path: string): WireObject {
  if (typeof value === 'string') return literal(value, path);
  if (isRecord(value)) return { entity: name(value['entity'], `${path}.entity`) };
  throw badRequest(path, `must be a string or { "entity": "<id>" }, got ${describe(value)}`);
}

const optionalObject = optional(parseObject);

function parseFact(value: unknown, path: string): WireFactInput {
  const f = record(value, path);
  const fact = compact<WireFactInput>({
    text: text(f['text'], `${path}.text`),
    subject: optionalName(f['subject'], `${path}.subject`),
    predicate: optionalName(f['predicate'], `${path}.predicate`),
    object: optionalObject(f['object'], `${path}.object`),
    confidence: optionalConfidence(f['confidence'], `${path}.confidence`),
    observedAt: optionalTimestamp(f['observedAt'], `${path}.observedAt`),
    validFrom: optionalTimestamp(f['validFrom'], `${path}.validFrom`),
    validTo: optionalTimestamp(f['validTo'], `${path}.validTo`),
    halfLifeDays: optionalHalfLifeDays(f['halfLifeDays'], `${path}.halfLifeDays`),
  });
  // A predicate without a subject has nothing to hang on; an object needs both to be an edge.
  if (fact.predicate !== undefined && fact.subject === undefined) {
    throw badRequest(`${path}.subject`, 'is required when predicate is given');
  }
  if (fact.object !== undefined && fact.predicate === undefined) {
    throw badRequest(`${path}.predicate`, 'is required when object is given');
  }
  if (fact.validFrom !== undefined && fact.validTo !== undefined) {
    if (timestampMs(fact.validTo, '') < timestampMs(fact.validFrom, '')) {
      throw badRequest(`${path}.validTo`, `must not be before ${path}.validFrom`);
    }
  }
  return fact;
}

/** `remember`: only `agent` and `fact.text` are required. */
export function parseRememberRequest(body: unknown): RememberRequest {
  const b = envelope(body);
  return compact<RememberRequest>({
    v: 1,
    agent: id(b['agent'], 'agent'),
    node: optionalId(b['node'], 'node'),
    task: optionalTaskId(b['task'], 'task'),
    domain: optionalDomainName(b['domain'], 'domain'),
    opId: optionalId(b['opId'], 'opId'),
    fact: parseFact(b['fact'], 'fact'),
  });
}

/**
 * `remember_batch`: the envelope is checked as a whole (a bad `agent`, or `items` that is not a list of 1 to
 * LIMITS.batchItems, fails the request); each item is checked on its own, so one bad item (a bad fact, no `opId`)
 * fails only itself — its slot holds the error, and the others are remembered.
 */
export function parseRememberBatchRequest(body: unknown): { readonly req: Omit<RememberBatchRequest, 'items'>; readonly items: readonly (RememberBatchItem | ShardmindError)[] } {
  const b = envelope(body);
  const req = compact<Omit<RememberBatchRequest, 'items'>>({
    v: 1,
    agent: id(b['agent'], 'agent'),
    node: optionalId(b['node'], 'node'),
    domain: optionalDomainName(b['domain'], 'domain'),
  });
  const raw = b['items'];
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > LIMITS.batchItems) {
    throw badRequest('items', `must be a list of 1 to ${LIMITS.batchItems} items, got ${Array.isArray(raw) ? `${raw.length} items` : describe(raw)}`);
  }
  const items = raw.map((item: unknown, i): RememberBatchItem | ShardmindError => {
    const path = `items[${i}]`;
    try {
      if (!isRecord(item)) throw badRequest(path, `must be an object with a "fact", got ${describe(item)}`);
      // Required here, unlike on a lone remember: a batch that failed midway is retried whole, and only the items'
      // own opIds keep the ones that had landed from being applied twice.
      if (item['opId'] === undefined || item['opId'] === null) throw badRequest(`${path}.opId`, 'is required in a batch (a retried batch is applied once by its items\' opIds)');
      return compact<RememberBatchItem>({
        opId: id(item['opId'], `${path}.opId`),
        task: optionalTaskId(item['task'], `${path}.task`),
        fact: parseFact(item['fact'], `${path}.fact`),
      });
    } catch (err) {
      if (err instanceof ShardmindError) return err;
      throw err;
    }
  });
  return { req, items };
}

function parseDomains(value: unknown, path: string): string | string[] {
  if (Array.isArray(value)) return list(domainName, LIMITS.domainsPerRequest)(value, path);
  if (typeof value === 'string') return domainName(value, path);
  throw badRequest(path, `must be a domain name or a list of them, got ${describe(value)}`);
}

/** A recall's optional fields' checks, made once: every shard read and routed recall runs them. */
const recallChecks = {
  id: optional(id),
  taskId: optional(taskId),
  text: optional(text),
  domains: optional(parseDomains),
  name: optional(name),
  timestamp: optional(timestamp),
  unit: optional(unit),
  limit: optional(recallLimit),
  hops: optional(hops),
  boolean: optional(boolean),
  seqMap: optional(seqMap),
  maxStaleMs: optional(maxStaleMs),
};

/** `recall`: `query` or `subject` is required. */
export function parseRecallRequest(body: unknown): RecallRequest {
  return recallFields(envelope(body));
}

/** A recall's fields, from a body whose envelope was checked; errors name the fields at the top level. */
function recallFields(b: Record<string, unknown>): RecallRequest {
  const c = recallChecks;
  const req = compact<RecallRequest>({
    v: 1,
    agent: c.id(b['agent'], 'agent'),
    task: c.taskId(b['task'], 'task'),
    query: c.text(b['query'], 'query'),
    domain: c.domains(b['domain'], 'domain'),
    subject: c.name(b['subject'], 'subject'),
    predicate: c.name(b['predicate'], 'predicate'),
    asOf: c.timestamp(b['asOf'], 'asOf'),
    minConfidence: c.unit(b['minConfidence'], 'minConfidence'),
    limit: c.limit(b['limit'], 'limit'),
    hops: c.hops(b['hops'], 'hops'),
    includeInactive: c.boolean(b['includeInactive'], 'includeInactive'),
    minSeq: c.seqMap(b['minSeq'], 'minSeq'),
    maxStaleMs: c.maxStaleMs(b['maxStaleMs'], 'maxStaleMs'),
  });
  if (req.query === undefined && req.subject === undefined) {
    throw badRequest('query', 'query or subject is required');
  }
  return req;
}

/** One `recall_batch` item: the recall, and how its reply is to be written (as `recall`'s own fields say). */
export interface RecallBatchItem {
  readonly req: RecallRequest;
  readonly layout: RecallLayout;
  /** False when the item's `knownColumns` says its reader knows the table's columns (`parseKnownColumns`). */
  readonly withColumns: boolean;
}

/**
 * `recall_batch`: `{ v: 1, recalls: [ …recall requests ] }`. The envelope is checked as a whole (`recalls` that is
 * not a list of 1 to LIMITS.recallBatchItems fails the request); each item is checked as a lone `recall` would be,
 * and a bad one fails only itself, its error naming the item (`recalls[2].limit: …`). An item's `v` may be left out
 * (the batch carries it); when present it must be 1.
 */
export function parseRecallBatchRequest(body: unknown): { readonly items: readonly (RecallBatchItem | ShardmindError)[] } {
  const b = envelope(body);
  const raw = b['recalls'];
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > LIMITS.recallBatchItems) {
    throw badRequest('recalls', `must be a list of 1 to ${LIMITS.recallBatchItems} recall requests, got ${Array.isArray(raw) ? `${raw.length} items` : describe(raw)}`);
  }
  const items: (RecallBatchItem | ShardmindError)[] = new Array(raw.length);
  for (let i = 0; i < raw.length; i++) items[i] = recallBatchItem(raw[i], i);
  return { items };
}

function recallBatchItem(item: unknown, i: number): RecallBatchItem | ShardmindError {
  if (!isRecord(item)) return badRequest(`recalls[${i}]`, `must be a recall request (an object), got ${describe(item)}`);
  if (item['v'] !== undefined && item['v'] !== 1) return badRequest(`recalls[${i}].v`, `must be 1 or left out, got ${describe(item['v'])}`);
  try {
    return { req: recallFields(item), layout: parseRecallLayout(item), withColumns: !parseKnownColumns(item) };
  } catch (err) {
    // The checks name the field as a lone recall has it: the item's index goes in front.
    if (err instanceof ShardmindError && err.code === ErrorCode.BAD_REQUEST) return new ShardmindError(ErrorCode.BAD_REQUEST, `recalls[${i}].${err.message}`);
    throw err;
  }
}

/**
 * A fact id as the shards write them, `<domain>:<position, base 36>:<index>` (`email:000000002a:0`). Its parts are
 * opaque; the shape is checked so that a malformed id is a BAD_REQUEST, not a "no such fact" (NOT_FOUND), and so the
 * router can read the domain from it.
 */
const FACT_ID = /^[a-z][a-z0-9_]{0,31}:[0-9a-z]{1,10}:[0-9]+$/;

const factId: Check<string> = (value, path) => {
  const s = id(value, path);
  if (!FACT_ID.test(s)) {
    throw badRequest(path, `must be a fact id as a reply gave it, like "email:000000002a:0" (<domain>:<position>:<index>), got ${describe(s)}`);
  }
  return s;
};

/** `forget`: remove a fact's text; a tombstone stays. */
export function parseForgetRequest(body: unknown): ForgetRequest {
  const b = envelope(body);
  return compact<ForgetRequest>({
    v: 1,
    agent: id(b['agent'], 'agent'),
    opId: optional(id)(b['opId'], 'opId'),
    factId: factId(b['factId'], 'factId'),
  });
}

/** `retract`: the fact stopped being true at `validTo` (default: now). */
export function parseRetractRequest(body: unknown): RetractRequest {
  const b = envelope(body);
  return compact<RetractRequest>({
    v: 1,
    agent: id(b['agent'], 'agent'),
    opId: optional(id)(b['opId'], 'opId'),
    factId: factId(b['factId'], 'factId'),
    validTo: optional(timestamp)(b['validTo'], 'validTo'),
  });
}

/** `history`: the facts recorded for (subject, predicate), a page of `limit` below the cursor `before`. */
export function parseHistoryRequest(body: unknown): HistoryRequest {
  const b = envelope(body);
  return compact<HistoryRequest>({
    v: 1,
    subject: name(b['subject'], 'subject'),
    predicate: optional(name)(b['predicate'], 'predicate'),
    limit: optional(historyLimit)(b['limit'], 'limit'),
    before: optional(historyCursor)(b['before'], 'before'),
    minSeq: optional(seqMap)(b['minSeq'], 'minSeq'),
    maxStaleMs: optional(maxStaleMs)(b['maxStaleMs'], 'maxStaleMs'),
  });
}

/** `get`: one fact by id. */
export function parseGetRequest(body: unknown): GetRequest {
  const b = envelope(body);
  return compact<GetRequest>({
    v: 1,
    factId: factId(b['factId'], 'factId'),
    minSeq: optional(seqMap)(b['minSeq'], 'minSeq'),
    maxStaleMs: optional(maxStaleMs)(b['maxStaleMs'], 'maxStaleMs'),
  });
}

/** Attribute keys an entity may not have: `__proto__`, and what msgpackr decodes it to. */
const RESERVED_ATTRIBUTE_KEYS: ReadonlySet<string> = new Set(['__proto__', '__proto_']);

function parseEntityInput(value: unknown, path: string): WireEntityInput {
  const e = record(value, path);
  const aliases = optional(list(name, LIMITS.entityAliases))(e['aliases'], `${path}.aliases`);
  let attributes: Record<string, string | number | boolean> | undefined;
  if (e['attributes'] !== undefined && e['attributes'] !== null) {
    const a = record(e['attributes'], `${path}.attributes`);
    const keys = Object.keys(a);
    if (keys.length > LIMITS.entityAttributes) throw badRequest(`${path}.attributes`, `has ${keys.length} keys; at most ${LIMITS.entityAttributes}`);
    attributes = {};
    for (const k of keys) {
      name(k, `${path}.attributes key`);
      // Assigned to a plain object, "__proto__" sets its prototype and the value is lost (a JSON body), and msgpackr
      // decodes it as "__proto_" (a msgpack body): refused, so the two encodings cannot store different keys and an
      // acknowledged write drops nothing (review session 12, L1).
      if (RESERVED_ATTRIBUTE_KEYS.has(k)) throw badRequest(`${path}.attributes key`, `${JSON.stringify(k)} is reserved`);
      const v = a[k];
      if (typeof v === 'string') attributes[k] = literal(v, `${path}.attributes.${k}`);
      else if (typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) attributes[k] = v;
      else throw badRequest(`${path}.attributes.${k}`, `must be a string, a finite number or a boolean, got ${describe(v)}`);
    }
  }
  return compact<WireEntityInput>({
    id: name(e['id'], `${path}.id`),
    name: optional(name)(e['name'], `${path}.name`),
    type: optional(name)(e['type'], `${path}.type`),
    aliases,
    attributes,
  });
}

/** `entity`: create or update an entity (aliases and attributes merge). */
export function parseEntityRequest(body: unknown): EntityRequest {
  const b = envelope(body);
  return compact<EntityRequest>({
    v: 1,
    agent: id(b['agent'], 'agent'),
    opId: optional(id)(b['opId'], 'opId'),
    domain: optional(parseDomains)(b['domain'], 'domain'),
    entity: parseEntityInput(b['entity'], 'entity'),
  });
}

/** `lookup`: an entity by id or alias. */
export function parseLookupRequest(body: unknown): LookupRequest {
  const b = envelope(body);
  return compact<LookupRequest>({
    v: 1,
    entity: name(b['entity'], 'entity'),
    domain: optional(parseDomains)(b['domain'], 'domain'),
    minSeq: optional(seqMap)(b['minSeq'], 'minSeq'),
  });
}

/** `classify`: which domains a text belongs to. */
export function parseClassifyRequest(body: unknown): ClassifyRequest {
  const b = envelope(body);
  return { v: 1, text: text(b['text'], 'text') };
}

export function parseTaskBeginRequest(body: unknown): TaskBeginRequest {
  const b = envelope(body);
  return compact<TaskBeginRequest>({
    v: 1,
    agent: id(b['agent'], 'agent'),
    text: text(b['text'], 'text'),
    domain: optional(domainName)(b['domain'], 'domain'),
    opId: optionalId(b['opId'], 'opId'),
  });
}

export function parseTaskObserveRequest(body: unknown): TaskObserveRequest {
  const b = envelope(body);
  const opId = optionalId(b['opId'], 'opId');
  return { v: 1, task: taskId(b['task'], 'task'), text: text(b['text'], 'text'), ...(opId !== undefined ? { opId } : {}) };
}

export function parseTaskRerouteRequest(body: unknown): TaskRerouteRequest {
  const b = envelope(body);
  return { v: 1, task: taskId(b['task'], 'task'), domain: domainName(b['domain'], 'domain') };
}

export function parseTaskEndRequest(body: unknown): TaskEndRequest {
  const b = envelope(body);
  return { v: 1, task: taskId(b['task'], 'task') };
}

/** The ops a shard serves on `sm.shard.<domain>.<op>`, each with its parser. */
export const SHARD_REQUEST_PARSERS = {
  remember: parseRememberRequest,
  remember_batch: parseRememberBatchRequest,
  recall: parseRecallRequest,
  recall_batch: parseRecallBatchRequest,
  forget: parseForgetRequest,
  retract: parseRetractRequest,
  history: parseHistoryRequest,
  get: parseGetRequest,
  entity: parseEntityRequest,
  lookup: parseLookupRequest,
} as const;

export type ShardOp = keyof typeof SHARD_REQUEST_PARSERS;
export const SHARD_OPS = Object.keys(SHARD_REQUEST_PARSERS) as readonly ShardOp[];

export function isShardOp(op: string): op is ShardOp {
  return Object.hasOwn(SHARD_REQUEST_PARSERS, op);
}

/** The read ops, which replicas serve on `sm.replica.<domain>.<op>` (writes go to the leader only). */
export const REPLICA_OPS = ['recall', 'get', 'history'] as const satisfies readonly ShardOp[];
export type ReplicaOp = (typeof REPLICA_OPS)[number];

export function isReplicaOp(op: string): op is ReplicaOp {
  return (REPLICA_OPS as readonly string[]).includes(op);
}
