/**
 * `task.begin` with an opId makes one task however often it is sent (decisions §88), against a real host (its
 * router) on a real nats-server: the same begin twice answers the same task, the second `repeated: true`, and the
 * task bucket holds one more task, not two; in JSON too; after the router's host restarts; when the first attempt
 * recorded its task but never saved it, the repeat makes it under that id. Without an opId every begin makes a task,
 * as before; another agent's begin with the same opId is its own; a malformed opId is refused and makes nothing.
 * The SDK sends an opId and, given one, answers the same task.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect as natsConnect, headers, type KV, type NatsConnection } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { connect } from '../../client/index.ts';
import { ErrorCode, decodePayload, encodePayload, memSubject } from '../../protocol/index.ts';
import { TASK_BUCKET, WriteRoutes } from '../../router/index.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';
import { oneMiniConfig } from '../client/one-mini.ts';

interface Ctx {
  nats: NatsServerProcess;
  hosts: HostCluster;
  nc: NatsConnection;
  tasks: KV;
}

type Body = Record<string, any>;

const test = suite<Ctx>('task.begin with an opId');

test.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  try {
    ctx.hosts = await startHosts({ config: oneMiniConfig(ctx.nats.url) });
    ctx.nc = await natsConnect({ servers: ctx.nats.url });
    ctx.tasks = await ctx.nc.jetstream().views.kv(TASK_BUCKET);
  } catch (err) {
    await ctx.nc?.close();
    await ctx.hosts?.stop();
    await ctx.nats.destroy();
    throw err;
  }
});

test.after(async (ctx) => {
  await ctx.nc?.close();
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

async function begin(nc: NatsConnection, body: Body, json = false): Promise<Body> {
  const encoding = json ? 'json' : 'msgpack';
  const h = headers();
  if (json) h.set('content-type', 'application/json');
  const msg = await nc.request(memSubject('task.begin'), encodePayload({ v: 1, ...body }, encoding), { timeout: 8_000, headers: h });
  return decodePayload(msg.data, encoding) as Body;
}

async function taskCount(kv: KV): Promise<number> {
  let n = 0;
  for await (const _ of await kv.keys()) n++;
  return n;
}

let seq = 0;
const freshOpId = (): string => `begin-op-${process.pid}-${Date.now()}-${++seq}`;

for (const json of [false, true]) {
  test(`${json ? 'JSON' : 'msgpack'}: the same begin twice is one task, the second answered repeated`, async (ctx) => {
    const before = await taskCount(ctx.tasks);
    const body = { agent: 'agent-a', text: 'reply to Dana about the invoice email', opId: freshOpId() };
    const first = await begin(ctx.nc, body, json);
    const again = await begin(ctx.nc, body, json);
    assert.not.ok(first['error'], JSON.stringify(first['error']));
    assert.ok(first['task'].startsWith('t-'));
    assert.is(first['repeated'], undefined, 'the first makes the task');
    assert.is(again['task'], first['task']);
    assert.is(again['domain'], first['domain']);
    assert.is(again['repeated'], true);
    assert.ok(Array.isArray(again['context']));
    assert.is(await taskCount(ctx.tasks), before + 1, 'one task made');
  });
}

test('a repeat answers the task as it is now: moved, then ended', async (ctx) => {
  const body = { agent: 'agent-m', text: 'reply to Dana about the contract email', domain: 'email', opId: freshOpId() };
  const first = await begin(ctx.nc, body);
  const moved = decodePayload((await ctx.nc.request(memSubject('task.reroute'), encodePayload({ v: 1, task: first['task'], domain: 'calendar' }, 'msgpack'))).data, 'msgpack') as Body;
  assert.is(moved['domain'], 'calendar');
  assert.is((await begin(ctx.nc, body))['domain'], 'calendar');
  await ctx.nc.request(memSubject('task.end'), encodePayload({ v: 1, task: first['task'] }, 'msgpack'));
  const ended = await begin(ctx.nc, body);
  assert.is(ended['task'], first['task']);
  assert.is(ended['repeated'], true);
});

test('without an opId every begin makes a task; another agent\'s begin with the same opId is its own', async (ctx) => {
  const before = await taskCount(ctx.tasks);
  const a = await begin(ctx.nc, { agent: 'agent-a', text: 'plan the offsite' });
  const b = await begin(ctx.nc, { agent: 'agent-a', text: 'plan the offsite' });
  assert.is.not(a['task'], b['task']);
  const opId = freshOpId();
  const mine = await begin(ctx.nc, { agent: 'agent-a', text: 'plan the offsite', opId });
  const theirs = await begin(ctx.nc, { agent: 'agent-b', text: 'plan the offsite', opId });
  assert.is.not(mine['task'], theirs['task']);
  assert.is(theirs['repeated'], undefined);
  assert.is(await taskCount(ctx.tasks), before + 4);
});

test('a malformed opId is refused, naming it, and makes nothing', async (ctx) => {
  const before = await taskCount(ctx.tasks);
  for (const opId of ['', 'has space', 42, 'x'.repeat(129)]) {
    const reply = await begin(ctx.nc, { agent: 'agent-a', text: 'plan the offsite', opId });
    assert.is(reply['error']?.['code'], ErrorCode.BAD_REQUEST, JSON.stringify(opId));
    assert.ok(reply['error']['message'].startsWith('opId:'), reply['error']['message']);
  }
  assert.is(await taskCount(ctx.tasks), before);
});

test('a first attempt that recorded its task and never saved it: the repeat makes it under that id', async (ctx) => {
  const routes = await WriteRoutes.open(ctx.nc, { replicas: 1 });
  const opId = freshOpId();
  const recorded = `t-recorded-${seq}`;
  assert.is(await routes.pinTaskBegin('agent-r', opId, recorded), recorded);
  const reply = await begin(ctx.nc, { agent: 'agent-r', text: 'reply to the email from Dana', opId });
  assert.is(reply['task'], recorded);
  assert.is(reply['repeated'], true);
  const got = decodePayload((await ctx.nc.request(memSubject('task.get'), encodePayload({ v: 1, task: recorded }, 'msgpack'))).data, 'msgpack') as Body;
  assert.is(got['agent'], 'agent-r');
  assert.is(got['state'], 'active');
  assert.is((await begin(ctx.nc, { agent: 'agent-r', text: 'reply to the email from Dana', opId }))['task'], recorded);
});

test('the SDK sends an opId; given one, a second begin answers the same task', async (ctx) => {
  const bodies: Body[] = [];
  const sub = ctx.nc.subscribe(memSubject('task.begin'), { callback: (_, m) => void bodies.push(decodePayload(m.data, 'msgpack') as Body) });
  await ctx.nc.flush();
  const client = await connect({ connection: ctx.nc, agent: 'agent-s' });
  try {
    const a = await client.task.begin('reply to Dana about the invoice email');
    const b = await client.task.begin('reply to Dana about the invoice email');
    assert.is.not(a.task, b.task, 'two calls, two tasks');
    await ctx.nc.flush();
    assert.ok(bodies.length >= 2 && bodies.every((x) => typeof x['opId'] === 'string' && x['opId'].length > 0), JSON.stringify(bodies));
    assert.is.not(bodies[0]!['opId'], bodies[1]!['opId']);
    const opId = freshOpId();
    const once = await client.task.begin('reply to Dana about the invoice email', { opId });
    const twice = await client.task.begin('reply to Dana about the invoice email', { opId });
    assert.is(twice.task, once.task);
  } finally {
    sub.unsubscribe();
    await client.close();
  }
});

test('the repeat is answered after the router\'s host restarts', async (ctx) => {
  const body = { agent: 'agent-z', text: 'reply to Dana about the invoice email', opId: freshOpId() };
  const first = await begin(ctx.nc, body);
  await ctx.hosts.hosts[0]!.restart();
  // The host is ready before its router subscribes: "no responders" until then, which any client retries.
  let again: Body | undefined;
  for (const deadline = Date.now() + 15_000; again === undefined; ) {
    try {
      again = await begin(ctx.nc, body);
    } catch (err) {
      if ((err as { code?: string }).code !== '503' || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  assert.is(again['task'], first['task']);
  assert.is(again['repeated'], true);
});

test.run();
