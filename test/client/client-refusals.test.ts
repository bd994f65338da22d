/**
 * What the SDK refuses itself, before the wire (walkthrough session 12, F11, F6): a request over the NATS server's
 * `max_payload` fails at once with TOO_LARGE (not retryable, naming its size and the limit, not sent); a plain-JS
 * caller's wrong types (a string where a Date goes is fine, a number text, an object that is not one) get
 * BAD_REQUEST naming the field, never a TypeError from inside the client; ISO strings for times reach the server.
 * Real nats-server, real host process.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ErrorCode, ShardmindError, type ShardmindClient } from '../../client/index.ts';
import { NODE, startOneMiniClient, type OneMiniClient } from './one-mini.ts';

interface Ctx {
  cluster: OneMiniClient;
  client: ShardmindClient;
  retries: string[];
}

const t = suite<Ctx>('client refusals');

t.before(async (ctx) => {
  ctx.retries = [];
  ctx.cluster = await startOneMiniClient({ agent: 'plain-js', node: NODE, onRetry: (i) => ctx.retries.push(i.code) });
  ctx.client = ctx.cluster.client;
});

t.after(async (ctx) => {
  await ctx.cluster?.stop();
});

async function refusal(p: Promise<unknown>): Promise<ShardmindError> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof ShardmindError)) assert.unreachable(`expected a ShardmindError, got ${(err as Error)?.stack ?? String(err)}`);
    return err as ShardmindError;
  }
  return assert.unreachable('expected a refusal') as never;
}

t('a request over the server’s max_payload fails at once with TOO_LARGE, not retryable, naming both sizes; nothing is sent', async (ctx) => {
  const maxPayload = ctx.client.connection.info!.max_payload;
  const before = await ctx.client.remember({ text: 'before the big one' }, { domain: 'files' });
  ctx.retries.length = 0; // a first call may meet a router still starting
  const started = Date.now();
  const cases: [string, () => Promise<unknown>][] = [
    ['remember', () => ctx.client.remember({ text: 'a'.repeat(maxPayload + 10_000) }, { domain: 'files' })],
    ['routed remember', () => ctx.client.remember({ text: 'b'.repeat(maxPayload + 10_000) })],
    ['recall', () => ctx.client.recall({ query: 'x '.repeat(maxPayload / 2 + 5_000) })],
  ];
  for (const [what, call] of cases) {
    const e = await refusal(call());
    assert.is(e.code, ErrorCode.TOO_LARGE, `${what}: ${e.message}`);
    assert.is(e.retryable, false, what);
    assert.match(e.message, `max_payload of ${maxPayload} bytes`, what);
    assert.match(e.message, /\d{7} bytes/, what);
  }
  assert.ok(Date.now() - started < 2_000, `refused at once, took ${Date.now() - started} ms`);
  assert.equal(ctx.retries, [], 'no retries');
  // Nothing was appended for the refused ones: the next write follows the one before them.
  const after = await ctx.client.remember({ text: 'after the big ones' }, { domain: 'files' });
  assert.is(after.seq, before.seq + 1);
  // One fact of several too big for the wire fails alone.
  const many = await ctx.client.rememberMany([{ text: 'small one' }, { text: 'c'.repeat(maxPayload + 1) }, { text: 'small two' }], { domain: 'files' });
  assert.is((many[1] as ShardmindError).code, ErrorCode.TOO_LARGE);
  assert.ok(!(many[0] instanceof ShardmindError) && !(many[2] instanceof ShardmindError), JSON.stringify(many));
});

t('wrong types from a plain-JS caller are BAD_REQUEST naming the field, not TypeErrors', async (ctx) => {
  // Cast away the types, as a caller without TypeScript (or feeding a model's JSON) would pass them.
  const m = ctx.client as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const cases: [string, () => Promise<unknown>, string][] = [
    ['no text', () => m['remember']!.call(ctx.client, { subject: 'user' }, { domain: 'files' }), 'fact.text: required'],
    ['a number text', () => m['remember']!.call(ctx.client, { text: 42 }, { domain: 'files' }), 'fact.text: must be a string, got number 42'],
    ['a number object', () => m['remember']!.call(ctx.client, { text: 'x', object: 5 }, { domain: 'files' }), 'fact.object: must be a string or { entity: string }'],
    ['a number subject', () => m['remember']!.call(ctx.client, { text: 'x', subject: 7 }, { domain: 'files' }), 'fact.subject: must be a string'],
    ['an invalid Date', () => m['remember']!.call(ctx.client, { text: 'x', validFrom: new Date('nope') }, { domain: 'files' }), 'fact.validFrom: must be a Date or an ISO-8601 string'],
    ['a number time', () => m['remember']!.call(ctx.client, { text: 'x', observedAt: 1764000000000 }, { domain: 'files' }), 'fact.observedAt: must be a Date'],
    ['no fact', () => m['remember']!.call(ctx.client, undefined, { domain: 'files' }), 'fact: must be an object'],
    ['a number query', () => m['recall']!.call(ctx.client, { query: 5 }), 'query: must be a string'],
    ['a number domain', () => m['recall']!.call(ctx.client, { query: 'x', domain: 3 }), 'domain: must be a domain name'],
    ['an invalid asOf', () => m['recall']!.call(ctx.client, { query: 'x', asOf: new Date(NaN) }), 'asOf: must be a Date'],
    ['a number factId', () => m['forget']!.call(ctx.client, 12), 'factId: must be a string'],
  ];
  for (const [what, call, message] of cases) {
    const e = await refusal(call());
    assert.is(e.code, ErrorCode.BAD_REQUEST, `${what}: ${e.message}`);
    assert.match(e.message, message, what);
  }
  const many = await ctx.client.rememberMany([{ text: 'fine' }, { text: 9 } as never], { domain: 'files' });
  assert.is((many[1] as ShardmindError).code, ErrorCode.BAD_REQUEST);
});

t('times as ISO strings reach the server: a valid one is stored, one that is no time is refused by the server', async (ctx) => {
  const r = await ctx.client.remember({ text: 'the offsite was booked in November', validFrom: '2026-11-01T00:00:00Z' }, { domain: 'files' });
  const stored = await ctx.client.get(r.factId);
  assert.is(stored?.validFrom.toISOString(), '2026-11-01T00:00:00.000Z');
  const found = await ctx.client.recall({ query: 'offsite booked november', domain: 'files', asOf: new Date().toISOString() });
  assert.ok(found.facts.some((f) => f.id === r.factId));
  const e = await refusal(ctx.client.recall({ query: 'x', domain: 'files', asOf: 'yesterday' }));
  assert.is(e.code, ErrorCode.BAD_REQUEST, e.message);
  assert.match(e.message, 'asOf');
});

t.run();
