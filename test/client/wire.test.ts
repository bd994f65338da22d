/**
 * The client on a real nats-server against a scripted responder on the shard subjects: what it puts on the wire
 * (opIds, minSeq, encodings) and how it retries. The scripted responder stands in for a shard so each failure can
 * be produced exactly; `client.test.ts` runs the same client against a real host.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect as natsConnect, headers, type Msg, type NatsConnection, type Subscription } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { connect, ErrorCode, ShardmindError, type ShardmindClient } from '../../client/index.ts';
import {
  CONTENT_TYPE_HEADER,
  JSON_CONTENT_TYPE,
  decodePayload,
  encodePayload,
  encodingOf,
  errorReply,
  shardSubject,
} from '../../protocol/index.ts';

interface Ctx {
  server: NatsServerProcess;
  nc: NatsConnection;
  subs: Subscription[];
  clients: ShardmindClient[];
}

const wire = suite<Ctx>('client on the wire');

wire.before(async (ctx) => {
  ctx.server = await startNatsServer();
  ctx.nc = await natsConnect({ servers: ctx.server.url });
  ctx.subs = [];
  ctx.clients = [];
});

wire.after.each(async (ctx) => {
  for (const s of ctx.subs.splice(0)) s.unsubscribe();
  await Promise.all(ctx.clients.splice(0).map((c) => c.close()));
});

wire.after(async (ctx) => {
  await ctx.nc?.close();
  await ctx.server?.destroy();
});

/** Serves `subject` with `answer(body, n)`: an object is the reply, `undefined` leaves the request unanswered. */
function serve(ctx: Ctx, subject: string, answer: (body: Record<string, unknown>, n: number, msg: Msg) => object | undefined) {
  const seen: Record<string, unknown>[] = [];
  const sub = ctx.nc.subscribe(subject, {
    callback: (_err, msg) => {
      const encoding = encodingOf(msg.headers);
      const body = decodePayload(msg.data, encoding) as Record<string, unknown>;
      seen.push(body);
      const reply = answer(body, seen.length, msg);
      if (reply === undefined) return;
      const h = encoding === 'json' ? headers() : undefined;
      h?.set(CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE);
      msg.respond(encodePayload(reply, encoding), h ? { headers: h } : undefined);
    },
  });
  ctx.subs.push(sub);
  return seen;
}

async function client(ctx: Ctx, extra: Partial<Parameters<typeof connect>[0]> = {}): Promise<ShardmindClient> {
  const c = await connect({ connection: ctx.nc, agent: 'agent-a', node: 'mini-1', direct: true, ...extra });
  ctx.clients.push(c);
  return c;
}

const created = (body: Record<string, unknown>, seq: number) => ({
  v: 1, domain: 'email', seq, factId: `email:${seq}:0`, status: 'created', opId: body['opId'],
});

wire('remember - sends agent, node, an opId and ISO times; returns the typed result', async (ctx) => {
  const seen = serve(ctx, shardSubject('email', 'remember'), (b) => created(b, 7));
  const c = await client(ctx);
  const r = await c.remember(
    { text: 'prefers PDF', subject: 'user', predicate: 'prefers', object: 'pdf', observedAt: new Date(Date.UTC(2026, 10, 24, 10)) },
    { domain: 'email' },
  );
  assert.equal(r, { domain: 'email', seq: 7, factId: 'email:7:0', status: 'created', superseded: [], duplicate: false, opId: r.opId });
  const body = seen[0]!;
  assert.is(body['agent'], 'agent-a');
  assert.is(body['node'], 'mini-1');
  assert.is(body['opId'], r.opId);
  assert.equal(body['fact'], { text: 'prefers PDF', subject: 'user', predicate: 'prefers', object: 'pdf', observedAt: '2026-11-24T10:00:00.000Z' });
});

wire('retry - NOT_LEADER twice, then success: three deliveries, one opId', async (ctx) => {
  const seen = serve(ctx, shardSubject('email', 'remember'), (b, n) =>
    n < 3 ? errorReply(new ShardmindError(ErrorCode.NOT_LEADER, 'stepping down')) : created(b, 9),
  );
  const retries: string[] = [];
  const c = await client(ctx, { onRetry: (i) => retries.push(i.code) });
  const r = await c.remember({ text: 'x' }, { domain: 'email' });
  assert.is(seen.length, 3);
  assert.is(new Set(seen.map((b) => b['opId'])).size, 1);
  assert.is(seen[0]!['opId'], r.opId);
  assert.equal(retries, ['NOT_LEADER', 'NOT_LEADER']);
});

wire('retry - no responders until a shard subscribes: the write arrives once, with its opId', async (ctx) => {
  let seen: Record<string, unknown>[] = [];
  const c = await client(ctx, {
    onRetry: (i) => {
      // The leader appears after two refused attempts (a leadership gap).
      if (i.attempt === 2) seen = serve(ctx, shardSubject('files', 'remember'), (b) => ({ ...created(b, 1), domain: 'files' }));
    },
  });
  const r = await c.remember({ text: 'budget is in Finance' }, { domain: 'files' });
  assert.is(r.domain, 'files');
  assert.is(seen.length, 1);
  assert.is(seen[0]!['opId'], r.opId);
});

wire('retry - a lost reply (timeout) is retried for writes with the same opId', async (ctx) => {
  const seen = serve(ctx, shardSubject('email', 'remember'), (b, n) => (n === 1 ? undefined : created(b, 11)));
  const c = await client(ctx, { timeoutMs: 150 });
  const r = await c.remember({ text: 'x' }, { domain: 'email' });
  assert.is(seen.length, 2);
  assert.is(seen[1]!['opId'], seen[0]!['opId']);
  assert.is(r.seq, 11);
});

wire('retry - a lost task.begin reply is retried with the same opId (the router makes one task)', async (ctx) => {
  const seen = serve(ctx, 'sm.mem.task.begin', (b, n) => (n === 1 ? undefined : { v: 1, task: 't-1', domain: 'email', context: [], repeated: true }));
  const c = await client(ctx, { timeoutMs: 150 });
  const r = await c.task.begin('reply to Dana about the contract');
  assert.is(r.task, 't-1');
  assert.is(seen.length, 2);
  assert.type(seen[0]!['opId'], 'string');
  assert.is(seen[1]!['opId'], seen[0]!['opId']);
});

wire('retry - a lost task.observe reply is retried with the same opId (the task counts it once)', async (ctx) => {
  const seen = serve(ctx, 'sm.mem.task.observe', (b, n) =>
    n === 1 ? undefined : { v: 1, task: b['task'], domain: 'calendar', rerouted: null, context: [], repeated: true },
  );
  const c = await client(ctx, { timeoutMs: 150 });
  const r = await c.task.observe('t-1', 'now it is about a meeting');
  assert.is(r.domain, 'calendar');
  assert.is(seen.length, 2);
  assert.type(seen[0]!['opId'], 'string');
  assert.is(seen[1]!['opId'], seen[0]!['opId']);
});

wire('errors - BAD_REQUEST is thrown typed, at once, with the server message', async (ctx) => {
  const seen = serve(ctx, shardSubject('email', 'remember'), () =>
    errorReply(new ShardmindError(ErrorCode.BAD_REQUEST, 'fact.confidence: must be a number in 0..1, got 7')),
  );
  const c = await client(ctx);
  try {
    await c.remember({ text: 'x', confidence: 7 }, { domain: 'email' });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, ShardmindError);
    const e = err as ShardmindError;
    assert.is(e.code, ErrorCode.BAD_REQUEST);
    assert.is(e.retryable, false);
    assert.ok(e.message.includes('fact.confidence'), e.message);
  }
  assert.is(seen.length, 1);
});

wire('read-your-writes - recall carries minSeq from the last write and rises with reply seqs', async (ctx) => {
  serve(ctx, shardSubject('email', 'remember'), (b) => created(b, 42));
  const recalls = serve(ctx, shardSubject('email', 'recall'), () => ({ v: 1, domains: ['email'], facts: [], seqs: { email: 50 } }));
  const c = await client(ctx);
  const first = await c.recall({ query: 'pdf', domain: 'email' });
  assert.equal(first.facts, []);
  assert.not.ok('minSeq' in recalls[0]!, 'nothing written yet: no minSeq');
  await c.remember({ text: 'x' }, { domain: 'email' });
  await c.recall({ query: 'pdf', domain: 'email' });
  assert.equal(recalls[1]!['minSeq'], { email: 50 }, 'the read saw seq 50, higher than the write');
  assert.is(c.seenSeq('email'), 50);
});

wire('encoding - a JSON client sends and reads JSON, times become Dates', async (ctx) => {
  const fact = {
    id: 'email:1:0', domain: 'email', text: 'prefers PDF', confidence: 0.9, effectiveConfidence: 0.8,
    validFrom: '2026-11-24T10:00:00.000Z', observedAt: '2026-11-24T10:00:00.000Z', recordedAt: '2026-11-24T10:00:00.000Z',
    reinforcedAt: '2026-11-24T10:00:00.000Z', confirmations: 1, status: 'active', source: { agent: 'a' }, score: 0.7,
  };
  let contentType = '';
  serve(ctx, shardSubject('email', 'recall'), (_b, _n, msg) => {
    contentType = msg.headers?.get(CONTENT_TYPE_HEADER) ?? '';
    return { v: 1, domains: ['email'], facts: [fact] };
  });
  const c = await client(ctx, { encoding: 'json' });
  const r = await c.recall({ subject: 'user', domain: 'email' });
  assert.is(contentType, JSON_CONTENT_TYPE);
  assert.instance(r.facts[0]!.validFrom, Date);
  assert.is(r.facts[0]!.validFrom.toISOString(), '2026-11-24T10:00:00.000Z');
  assert.is(r.facts[0]!.score, 0.7);
  assert.equal(r.missing, []);
});

wire('routing - without direct, calls go to the router subjects sm.mem.<op>', async (ctx) => {
  const seen = serve(ctx, 'sm.mem.remember', (b) => created(b, 3));
  const c = await client(ctx, { direct: false });
  const r = await c.remember({ text: 'the user never takes meetings before 10' });
  assert.is(seen.length, 1);
  assert.not.ok('domain' in seen[0]!);
  assert.is(r.seq, 3);
  try {
    await c.recall({ query: 'x', direct: true });
    assert.unreachable();
  } catch (err) {
    assert.is((err as ShardmindError).code, ErrorCode.BAD_REQUEST);
  }
});

wire.run();
