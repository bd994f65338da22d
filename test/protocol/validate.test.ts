/** The edge's request validation: every field rule, and the messages that name the field and the problem. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  ErrorCode,
  ShardmindError,
  checkSize,
  decodePayload,
  encodePayload,
  errorReply,
  isShardOp,
  parseClassifyRequest,
  parseEntityRequest,
  parseForgetRequest,
  parseGetRequest,
  parseHistoryRequest,
  parseRecallRequest,
  parseRememberRequest,
  parseRememberBatchRequest,
  parseRetractRequest,
  parseTaskBeginRequest,
  parseTaskEndRequest,
  parseTaskObserveRequest,
  parseTaskRerouteRequest,
  unwrapReply,
  LIMITS,
  SHARD_OPS,
} from '../../protocol/index.ts';

/** Asserts `fn` throws a ShardmindError with `code` whose message contains every fragment. */
function rejects(fn: () => unknown, code: string, ...fragments: string[]): void {
  try {
    fn();
  } catch (err) {
    assert.instance(err, ShardmindError);
    const e = err as ShardmindError;
    assert.is(e.code, code, e.message);
    for (const f of fragments) assert.ok(e.message.includes(f), `"${e.message}" should contain "${f}"`);
    return;
  }
  assert.unreachable(`expected ${code} (${fragments.join(', ')})`);
}

const badRequest = (fn: () => unknown, ...fragments: string[]): void => rejects(fn, ErrorCode.BAD_REQUEST, ...fragments);
const remember = (fact: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  parseRememberRequest({ v: 1, agent: 'agent-a', fact: { text: 'likes PDF', ...fact }, ...extra });

test('remember - the minimum (agent and fact.text) parses', () => {
  assert.equal(parseRememberRequest({ v: 1, agent: 'agent-a', fact: { text: 'The user prefers PDF' } }), {
    v: 1,
    agent: 'agent-a',
    fact: { text: 'The user prefers PDF' },
  });
});

test('remember - the full contract example parses and timestamps are normalized to UTC', () => {
  const req = parseRememberRequest({
    v: 1, agent: 'agent-a', node: 'mini-1', task: 't-17', domain: 'email', opId: '01JD7Q8R9S:x-1',
    fact: {
      text: 'The user prefers PDF attachments over links', subject: 'user', predicate: 'prefers_attachment_format',
      object: 'pdf', confidence: 0.9, observedAt: '2026-11-24T10:00:00Z', validFrom: '2026-11-24T11:00:00+01:00',
      halfLifeDays: 30,
    },
  });
  assert.is(req.fact.observedAt, '2026-11-24T10:00:00.000Z');
  assert.is(req.fact.validFrom, '2026-11-24T10:00:00.000Z');
  assert.is(req.domain, 'email');
  assert.is(req.opId, '01JD7Q8R9S:x-1');
  assert.is(req.fact.confidence, 0.9);
});

test('envelope - v must be 1 and the body an object', () => {
  badRequest(() => parseRememberRequest({ agent: 'a', fact: { text: 'x' } }), 'v: must be 1, got nothing');
  badRequest(() => parseRememberRequest({ v: 2, agent: 'a', fact: { text: 'x' } }), 'v: must be 1, got 2');
  badRequest(() => parseRememberRequest({ v: '1', agent: 'a', fact: { text: 'x' } }), 'v: must be 1, got "1"');
  badRequest(() => parseRememberRequest([1, 2]), 'body: must be an object', 'got an array');
  badRequest(() => parseRememberRequest('hello'), 'body: must be an object', 'got "hello"');
  badRequest(() => parseRememberRequest(null), 'body: must be an object', 'got null');
  badRequest(() => parseRememberRequest(new Uint8Array(3)), 'got binary (3 bytes)');
});

test('envelope - unknown top-level and nested fields are ignored and not copied', () => {
  const req = remember({ mood: 'happy' }, { futureField: { a: 1 } });
  assert.not.ok('futureField' in req);
  assert.not.ok('mood' in req.fact);
});

test('envelope - null counts as absent for optional fields', () => {
  const req = remember({ subject: null, confidence: null }, { domain: null, opId: null });
  assert.equal(req, { v: 1, agent: 'agent-a', fact: { text: 'likes PDF' } });
});

test('required fields - agent and fact and fact.text', () => {
  badRequest(() => parseRememberRequest({ v: 1, fact: { text: 'x' } }), 'agent: must be a string, got nothing');
  badRequest(() => parseRememberRequest({ v: 1, agent: 'a' }), 'fact: must be an object, got nothing');
  badRequest(() => parseRememberRequest({ v: 1, agent: 'a', fact: 'x' }), 'fact: must be an object, got "x"');
  badRequest(() => parseRememberRequest({ v: 1, agent: 'a', fact: {} }), 'fact.text: must be a string');
  badRequest(() => remember({ text: '   ' }), 'fact.text: must be a non-empty string');
  badRequest(() => remember({ text: 42 }), 'fact.text: must be a string, got 42');
});

test('strings - maximum lengths are enforced', () => {
  badRequest(() => remember({ text: 'x'.repeat(LIMITS.textChars + 1) }), `fact.text: must be at most ${LIMITS.textChars}`);
  badRequest(() => remember({ subject: 'u'.repeat(LIMITS.nameChars + 1) }), 'fact.subject: must be at most');
  badRequest(() => remember({ subject: 'u', predicate: 'p', object: 'o'.repeat(LIMITS.literalChars + 1) }), 'fact.object: must be at most');
  badRequest(() => remember({}, { agent: 'a'.repeat(LIMITS.idChars + 1) }), 'agent: must be at most 128');
  remember({ text: 'x'.repeat(LIMITS.textChars) });
});

test('strings - control characters are refused in text, allowed tab and newline', () => {
  badRequest(() => remember({ text: 'bell\u0007' }), 'fact.text: must not contain control characters');
  assert.is(remember({ text: 'line one\nline\ttwo' }).fact.text, 'line one\nline\ttwo');
});

test('strings - a lone UTF-16 surrogate is refused (it has no UTF-8 form); a pair is a character like any other', () => {
  badRequest(() => remember({ text: 'lone \ud800 surrogate' }), 'fact.text: must be valid Unicode');
  badRequest(() => remember({ text: 'trailing \udc00' }), 'fact.text: must be valid Unicode');
  badRequest(() => remember({ subject: 'user\ud83d' }), 'fact.subject: must be valid Unicode');
  assert.is(remember({ text: 'ship it \ud83d\ude80' }).fact.text, 'ship it 🚀');
});

test('ids - only safe characters', () => {
  badRequest(() => remember({}, { agent: 'agent a' }), 'agent: must be an id of letters, digits');
  badRequest(() => remember({}, { agent: 'a/b' }), 'agent: must be an id');
  badRequest(() => remember({}, { opId: '-leading' }), 'opId: must be an id');
  badRequest(() => remember({}, { node: 'mini\n1' }), 'node: must be an id');
  assert.is(remember({}, { opId: 'a_b.c:d@e=f-1' }).opId, 'a_b.c:d@e=f-1');
  badRequest(() => parseForgetRequest({ v: 1, agent: 'a', factId: 'email:1 OR 1=1' }), 'factId: must be an id');
});

test('ids - task ids are KV-key safe (no dots, colons)', () => {
  badRequest(() => remember({}, { task: 't.17' }), 'task: must be a task id');
  badRequest(() => remember({}, { task: 't:17' }), 'task: must be a task id');
  assert.is(remember({}, { task: 't-17_x=' }).task, 't-17_x=');
});

test('domains - lowercase names only', () => {
  badRequest(() => remember({}, { domain: 'Email' }), 'domain: must be a domain name');
  badRequest(() => remember({}, { domain: 'e.mail' }), 'domain: must be a domain name');
  badRequest(() => remember({}, { domain: ['email'] }), 'domain: must be a string, got an array');
});

test("numbers - a fact's confidence is a number in (0, 1], as the store requires, so 0 never reaches the log", () => {
  badRequest(() => remember({ confidence: 'high' }), 'fact.confidence: must be a number in (0, 1], got "high"');
  badRequest(() => remember({ confidence: 1.5 }), 'fact.confidence: must be a number in (0, 1], got 1.5');
  badRequest(() => remember({ confidence: -0.1 }), 'got -0.1');
  badRequest(() => remember({ confidence: 0 }), 'fact.confidence: must be a number in (0, 1], got 0');
  badRequest(() => remember({ confidence: Number.NaN }), 'got NaN');
  badRequest(() => remember({ confidence: Number.POSITIVE_INFINITY }), 'got Infinity');
  assert.is(remember({ confidence: Number.MIN_VALUE }).fact.confidence, Number.MIN_VALUE);
  assert.is(remember({ confidence: 1 }).fact.confidence, 1);
  // A recall's minimum confidence may be 0 (no floor).
  assert.is(parseRecallRequest({ v: 1, query: 'x', minConfidence: 0 }).minConfidence, 0);
});

test('numbers - halfLifeDays within one hour to a century', () => {
  badRequest(() => remember({ halfLifeDays: 0 }), 'fact.halfLifeDays: must be a number in 1/24 (an hour)..36500 days, got 0');
  badRequest(() => remember({ halfLifeDays: 40_000 }), 'fact.halfLifeDays');
  assert.is(remember({ halfLifeDays: 0.5 }).fact.halfLifeDays, 0.5);
});

test('numbers - recall limit and hops are integers in range', () => {
  const recall = (x: Record<string, unknown>) => parseRecallRequest({ v: 1, query: 'pdf', ...x });
  badRequest(() => recall({ limit: 0 }), 'limit: must be an integer in 1..1000, got 0');
  badRequest(() => recall({ limit: 2.5 }), 'limit: must be an integer', 'got 2.5');
  badRequest(() => recall({ limit: '10' }), 'limit: must be an integer', 'got "10"');
  badRequest(() => recall({ hops: 4 }), 'hops: must be an integer in 0..3');
  badRequest(() => recall({ minConfidence: 2 }), 'minConfidence: must be a number in 0..1');
  badRequest(() => recall({ includeInactive: 'yes' }), 'includeInactive: must be true or false, got "yes"');
  assert.equal(recall({ limit: 5, hops: 1, includeInactive: true }), { v: 1, query: 'pdf', limit: 5, hops: 1, includeInactive: true });
});

test('timestamps - ISO-8601 with a zone; dates alone are UTC midnight; Dates (msgpack timestamps) accepted', () => {
  assert.is(remember({ observedAt: '2026-11-24' }).fact.observedAt, '2026-11-24T00:00:00.000Z');
  assert.is(remember({ observedAt: '2026-11-24T10:00Z' }).fact.observedAt, '2026-11-24T10:00:00.000Z');
  assert.is(remember({ observedAt: '2026-11-24T10:00:00.123456-02:00' }).fact.observedAt, '2026-11-24T12:00:00.123Z');
  assert.is(remember({ observedAt: new Date(Date.UTC(2026, 10, 24)) }).fact.observedAt, '2026-11-24T00:00:00.000Z');
  badRequest(() => remember({ observedAt: '2026-11-24T10:00:00' }), 'fact.observedAt: must be an ISO-8601 timestamp with a zone');
  badRequest(() => remember({ observedAt: 'yesterday' }), 'fact.observedAt: must be an ISO-8601', 'got "yesterday"');
  badRequest(() => remember({ observedAt: '2026-02-30T00:00:00Z' }), 'fact.observedAt');
  badRequest(() => remember({ observedAt: '2026-13-01T00:00:00Z' }), 'fact.observedAt');
  badRequest(() => remember({ observedAt: 1795514400000 }), 'fact.observedAt: must be an ISO-8601', 'got 1795514400000');
  badRequest(() => parseRecallRequest({ v: 1, query: 'x', asOf: '10/11/2026' }), 'asOf: must be an ISO-8601');
});

test('facts - validTo may not precede validFrom; a predicate needs a subject; an object needs a predicate', () => {
  badRequest(
    () => remember({ validFrom: '2026-11-24T10:00:00Z', validTo: '2026-11-23T10:00:00Z' }),
    'fact.validTo: must not be before fact.validFrom',
  );
  badRequest(() => remember({ predicate: 'prefers' }), 'fact.subject: is required when predicate is given');
  badRequest(() => remember({ subject: 'user', object: 'pdf' }), 'fact.predicate: is required when object is given');
});

test('facts - object is a literal or an entity reference', () => {
  const edge = remember({ subject: 'user', predicate: 'manager', object: { entity: 'bob' } });
  assert.equal(edge.fact.object, { entity: 'bob' });
  badRequest(() => remember({ subject: 'u', predicate: 'p', object: 7 }), 'fact.object: must be a string or { "entity": "<id>" }, got 7');
  badRequest(() => remember({ subject: 'u', predicate: 'p', object: { entity: 7 } }), 'fact.object.entity: must be a string, got 7');
});

test('recall - query or subject required; domain a name or a list', () => {
  badRequest(() => parseRecallRequest({ v: 1 }), 'query: query or subject is required');
  assert.equal(parseRecallRequest({ v: 1, subject: 'user' }), { v: 1, subject: 'user' });
  assert.equal(parseRecallRequest({ v: 1, query: 'x', domain: ['email', 'files'] }).domain, ['email', 'files']);
  badRequest(() => parseRecallRequest({ v: 1, query: 'x', domain: ['email', 'Files'] }), 'domain[1]: must be a domain name');
  badRequest(() => parseRecallRequest({ v: 1, query: 'x', domain: 3 }), 'domain: must be a domain name or a list');
  badRequest(
    () => parseRecallRequest({ v: 1, query: 'x', domain: Array.from({ length: 65 }, () => 'email') }),
    'domain: must have at most 64 items, got 65',
  );
});

test('minSeq - a map of domain to non-negative integer seqs', () => {
  assert.equal(parseRecallRequest({ v: 1, query: 'x', minSeq: { email: 42 } }).minSeq, { email: 42 });
  badRequest(() => parseRecallRequest({ v: 1, query: 'x', minSeq: { email: -1 } }), 'minSeq.email: must be an integer in 0..');
  badRequest(() => parseRecallRequest({ v: 1, query: 'x', minSeq: { email: '42' } }), 'minSeq.email: must be an integer', 'got "42"');
  badRequest(() => parseRecallRequest({ v: 1, query: 'x', minSeq: { 'Bad Domain': 1 } }), 'minSeq key: must be a domain name');
  badRequest(() => parseRecallRequest({ v: 1, query: 'x', minSeq: [42] }), 'minSeq: must be an object, got an array');
  badRequest(() => parseGetRequest({ v: 1, factId: 'email:1:0', minSeq: { email: 1.5 } }), 'minSeq.email');
  badRequest(() => parseHistoryRequest({ v: 1, subject: 'user', minSeq: 'email' }), 'minSeq: must be an object');
});

test('forget, retract, history, get - required fields and types', () => {
  assert.equal(parseForgetRequest({ v: 1, agent: 'a', factId: 'email:000000002a:0', opId: 'op-1' }), {
    v: 1, agent: 'a', opId: 'op-1', factId: 'email:000000002a:0',
  });
  badRequest(() => parseForgetRequest({ v: 1, agent: 'a' }), 'factId: must be a string, got nothing');
  badRequest(() => parseForgetRequest({ v: 1, factId: 'x' }), 'agent: must be a string');
  assert.is(parseRetractRequest({ v: 1, agent: 'a', factId: 'email:1:0', validTo: '2026-01-01T00:00:00Z' }).validTo, '2026-01-01T00:00:00.000Z');
  badRequest(() => parseRetractRequest({ v: 1, agent: 'a', factId: 'email:1:0', validTo: 'soon' }), 'validTo: must be an ISO-8601');
  assert.equal(parseHistoryRequest({ v: 1, subject: 'user', predicate: 'prefers' }), { v: 1, subject: 'user', predicate: 'prefers' });
  badRequest(() => parseHistoryRequest({ v: 1 }), 'subject: must be a string, got nothing');
  badRequest(() => parseGetRequest({ v: 1, factId: ['x'] }), 'factId: must be a string, got an array');
});

test('a malformed fact id is BAD_REQUEST naming the shape, on forget, retract and get (walkthrough-session11 finding 17)', () => {
  for (const bad of ['garbage', 'email', 'email:', 'email:0000000002', 'Email:0000000002:0', 'email:00000000020:0', 'email:000000002a:x']) {
    for (const parse of [parseForgetRequest, parseRetractRequest, parseGetRequest]) {
      badRequest(() => parse({ v: 1, agent: 'a', factId: bad }), 'factId: must be a fact id as a reply gave it, like "email:000000002a:0"');
    }
  }
  for (const good of ['email:000000002a:0', 'nope:0000000002:0', 'files:1:0', 'a_1:zzzzzzzzzz:12']) {
    assert.is(parseGetRequest({ v: 1, factId: good }).factId, good);
  }
});

test('minSeq states its bound, 2^53, and does not echo a number it received rounded (walkthrough-session11 finding 17)', () => {
  badRequest(() => parseRecallRequest({ v: 1, query: 'x', minSeq: { email: 2 ** 60 } }), 'minSeq.email: must be an integer in 0..2^53 - 1, got a number beyond 2^53 (about 1.15e+18)');
  badRequest(() => parseRecallRequest({ v: 1, query: 'x', minSeq: { email: -1 } }), 'minSeq.email: must be an integer in 0..2^53 - 1, got -1');
  assert.equal(parseRecallRequest({ v: 1, query: 'x', minSeq: { email: Number.MAX_SAFE_INTEGER } }).minSeq, { email: Number.MAX_SAFE_INTEGER });
});

test('classify and task requests - required fields and types', () => {
  assert.equal(parseClassifyRequest({ v: 1, text: 'book a meeting' }), { v: 1, text: 'book a meeting' });
  badRequest(() => parseClassifyRequest({ v: 1 }), 'text: must be a string');
  assert.equal(parseTaskBeginRequest({ v: 1, agent: 'a', text: 'mail Bob', domain: 'email' }), {
    v: 1, agent: 'a', text: 'mail Bob', domain: 'email',
  });
  badRequest(() => parseTaskBeginRequest({ v: 1, agent: 'a' }), 'text: must be a string');
  assert.equal(parseTaskObserveRequest({ v: 1, task: 't-1', text: 'now a meeting' }), { v: 1, task: 't-1', text: 'now a meeting' });
  badRequest(() => parseTaskObserveRequest({ v: 1, task: 't 1', text: 'x' }), 'task: must be a task id');
  assert.equal(parseTaskRerouteRequest({ v: 1, task: 't-1', domain: 'calendar' }), { v: 1, task: 't-1', domain: 'calendar' });
  badRequest(() => parseTaskRerouteRequest({ v: 1, task: 't-1' }), 'domain: must be a string');
  assert.equal(parseTaskEndRequest({ v: 1, task: 't-1' }), { v: 1, task: 't-1' });
  badRequest(() => parseTaskEndRequest({ v: 1, task: 17 }), 'task: must be a string, got 17');
});

test('checkSize - over the limit is TOO_LARGE, at the limit is fine', () => {
  checkSize(new Uint8Array(100), 100);
  rejects(() => checkSize(new Uint8Array(101), 100), ErrorCode.TOO_LARGE, 'payload is 101 bytes; the limit is 100 bytes');
  rejects(() => checkSize(70_000, 65_536), ErrorCode.TOO_LARGE);
});

test('malformed bytes - decoding then parsing gives BAD_REQUEST, never a crash', () => {
  badRequest(() => decodePayload(new TextEncoder().encode('{"v":1,'), 'json'), 'payload is not valid JSON');
  badRequest(() => decodePayload(new Uint8Array([0x81]), 'msgpack'), 'payload is not valid msgpack');
  badRequest(() => decodePayload(new Uint8Array([0x01, 0x02]), 'msgpack'), 'payload is not valid msgpack');
  // 0xc1 is "never used" in msgpack; msgpackr decodes it to a marker object, which the parser refuses.
  badRequest(() => parseRememberRequest(decodePayload(new Uint8Array([0xc1]), 'msgpack')), 'body: must be an object');
  badRequest(() => decodePayload(new Uint8Array(0), 'msgpack'), 'empty payload');
  // A msgpack string is valid msgpack but not a request.
  badRequest(() => parseRememberRequest(decodePayload(encodePayload('hi', 'msgpack'), 'msgpack')), 'body: must be an object');
});

test('envelope helpers - errorReply and unwrapReply round trip a typed error', () => {
  const reply = errorReply(new ShardmindError(ErrorCode.NOT_LEADER, 'mini-2 leads email'));
  assert.equal(reply, { v: 1, error: { code: 'NOT_LEADER', message: 'mini-2 leads email', retryable: true } });
  rejects(() => unwrapReply(decodePayload(encodePayload(reply, 'msgpack'), 'msgpack')), ErrorCode.NOT_LEADER, 'mini-2 leads email');
  assert.equal(errorReply(new Error('boom')).error, { code: 'INTERNAL', message: 'boom', retryable: false });
  assert.equal(unwrapReply<{ v: 1; seq: number }>({ v: 1, seq: 3 }), { v: 1, seq: 3 });
  rejects(() => unwrapReply('nope'), ErrorCode.INTERNAL);
});

test('shard ops - the nine shard subjects each have a parser', () => {
  assert.equal([...SHARD_OPS], ['remember', 'remember_batch', 'recall', 'recall_batch', 'forget', 'retract', 'history', 'get', 'entity', 'lookup']);
  assert.ok(isShardOp('recall'));
  assert.not.ok(isShardOp('toString'));
  assert.not.ok(isShardOp('classify'));
});

test('remember_batch - a bad envelope fails the request, a bad item only its slot', () => {
  const fact = { text: 'The user prefers PDF attachments' };
  assert.throws(() => parseRememberBatchRequest({ v: 1, agent: 'a', items: [] }), (e: ShardmindError) => e.message.startsWith('items:'));
  assert.throws(() => parseRememberBatchRequest({ v: 1, items: [{ fact }] }), (e: ShardmindError) => e.message.startsWith('agent:'));
  assert.throws(() => parseRememberBatchRequest({ v: 1, agent: 'a', items: Array.from({ length: 257 }, () => ({ fact })) }), /1 to 256 items, got 257/);
  const { req, items } = parseRememberBatchRequest({
    v: 1,
    agent: 'a',
    node: 'mini-1',
    items: [{ fact, opId: 'op-1', task: 't-1' }, 'nope', { opId: 'op-2', fact: { text: '' } }, { opId: 'op-3', fact, unknown: 1 }, { fact }],
  });
  assert.equal(req, { v: 1, agent: 'a', node: 'mini-1' });
  assert.equal(items[0], { opId: 'op-1', task: 't-1', fact });
  assert.instance(items[1], ShardmindError);
  assert.ok((items[1] as ShardmindError).message.startsWith('items[1]:'), (items[1] as ShardmindError).message);
  assert.ok((items[2] as ShardmindError).message.startsWith('items[2].fact.text'), (items[2] as ShardmindError).message);
  assert.equal(items[3], { opId: 'op-3', fact });
  assert.ok((items[4] as ShardmindError).message.startsWith('items[4].opId: is required'), (items[4] as ShardmindError).message);
});

test('entities - an attribute named __proto__ is refused in JSON and in msgpack, not dropped or renamed', () => {
  const json = decodePayload(new TextEncoder().encode('{"v":1,"agent":"a","entity":{"id":"bob","attributes":{"__proto__":"evil","role":"cfo"}}}'), 'json');
  badRequest(() => parseEntityRequest(json), 'entity.attributes key', '"__proto__" is reserved');
  const attributes: Record<string, unknown> = { role: 'cfo' };
  Object.defineProperty(attributes, '__proto__', { value: 'evil', enumerable: true, configurable: true, writable: true });
  const packed = decodePayload(encodePayload({ v: 1, agent: 'a', entity: { id: 'bob', attributes } }, 'msgpack'), 'msgpack');
  badRequest(() => parseEntityRequest(packed), 'entity.attributes key', 'is reserved');
  const fine = parseEntityRequest({ v: 1, agent: 'a', entity: { id: 'bob', attributes: { constructor: 'c', toString: 't', role: 'cfo' } } });
  assert.equal(fine.entity.attributes, { constructor: 'c', toString: 't', role: 'cfo' });
});

test.run();
