/**
 * `task.observe` counts an observation once: the machine ignores an opId it has counted (bounded), the router answers
 * a repeat with the task as it is and the move that observation decided, the SDK sends an opId, and concurrent
 * steps on one task (two agents, two routers) are all counted — each saves over the revision it loaded and loads
 * again when another saved first. A real nats-server, one in-process host leading every domain, two routers.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, headers, type NatsConnection } from 'nats';
import { startNatsServer, waitForJetStream, type NatsServerProcess } from '../../cli/index.ts';
import { Host } from '../../actors/index.ts';
import { connect as connectClient, type ShardmindClient } from '../../client/index.ts';
import { resolveConfig, type ClusterConfig } from '../../config/index.ts';
import { decodePayload, encodePayload, memSubject } from '../../protocol/index.ts';
import { NaiveBayesClassifier, newTask, startRouter, stepTask, type Router, type TaskEvent } from '../../router/index.ts';
import { TASK_OPS_KEPT } from '../../router/task-machine.ts';
import { openShardStore } from '../../shards/index.ts';
import shipped from '../../cluster.config.ts';

interface Ctx {
  server?: NatsServerProcess;
  dir?: string;
  host?: Host;
  config?: ClusterConfig;
  routers: Router[];
  connections: NatsConnection[];
  nc?: NatsConnection;
}

const t = suite<Ctx>('task observe once', { routers: [], connections: [] });

t.before(async (ctx) => {
  ctx.server = await startNatsServer();
  ctx.dir = mkdtempSync(join(tmpdir(), 'sm-task-once-'));
  ctx.nc = await connect({ servers: ctx.server.url });
  await waitForJetStream(ctx.nc);
  ctx.config = resolveConfig({
    ...shipped,
    cluster: { name: 'task-once' },
    nodes: [{ name: 'mini-1', nats: [ctx.server.url] }],
    placement: Object.fromEntries(shipped.domains.map((d) => [d.name, { leader: 'mini-1', standbys: [] }])),
    dataDir: ctx.dir,
    replication: { replicas: 1 },
  });
  ctx.host = new Host({ config: ctx.config, node: 'mini-1', openStore: openShardStore, log: () => undefined });
  await ctx.host.whenReady();
  // Two routers on their own connections, as on two Minis: the queue group spreads requests over both.
  for (const node of ['r1', 'r2']) {
    const nc = await connect({ servers: ctx.server.url });
    ctx.connections.push(nc);
    ctx.routers.push(await startRouter(nc, ctx.config, { node, log: () => undefined }));
  }
});

t.after(async (ctx) => {
  for (const r of ctx.routers) await r.stop();
  for (const nc of ctx.connections) await nc.close();
  await ctx.host?.drain();
  await ctx.nc?.close();
  await ctx.server?.destroy();
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

async function ask(nc: NatsConnection, op: string, body: unknown, json = false): Promise<Record<string, any>> {
  const encoding = json ? 'json' : 'msgpack';
  const h = headers();
  if (json) h.set('content-type', 'application/json');
  const msg = await nc.request(memSubject(op), encodePayload(body, encoding), { timeout: 10_000, headers: h });
  return decodePayload(msg.data, encoding) as Record<string, any>;
}

const kinds = (reply: Record<string, any>): string => reply['history'].map((h: { kind: string }) => h.kind).join(' ');

t('machine - an OBSERVE whose opId was counted changes nothing; the record is bounded and keeps the move', () => {
  const classifier = new NaiveBayesClassifier(shipped.domains);
  let clock = 1_000;
  const observe = (text: string, opId?: string): TaskEvent => ({
    type: 'OBSERVE',
    at: (clock += 1_000),
    text,
    distribution: classifier.classify(text),
    ...(opId !== undefined ? { opId } : {}),
  });
  const begun = newTask({ id: 't-1', agent: 'a', rerouteMargin: 0.2 }, [
    { type: 'CLASSIFIED', at: clock, text: 'answer the email from Dana about the project', distribution: classifier.classify('answer the email from Dana about the project') },
  ]);
  const once = stepTask(begun.persisted, [observe('Dana would rather meet in person next week', 'op-1')]);
  const twice = stepTask(JSON.parse(JSON.stringify(once.persisted)), [observe('Dana would rather meet in person next week', 'op-1')]);
  assert.equal(twice.context.evidence, once.context.evidence);
  assert.is(twice.context.history.length, 2);
  // Without an opId nothing can tell a repeat: it counts (JSON callers that send none).
  assert.is(stepTask(once.persisted, [observe('Dana would rather meet in person next week')]).context.history.length, 3);

  const moved = stepTask(once.persisted, [observe('find a free slot next Tuesday afternoon for a 30 minute call and send her an invitation', 'op-2')]);
  assert.is(moved.state, 'rerouting');
  assert.equal(moved.context.observedOps?.at(-1), { opId: 'op-2', rerouted: { from: 'email', to: 'calendar' } });

  let many = begun;
  for (let i = 0; i < TASK_OPS_KEPT + 10; i++) many = stepTask(many.persisted, [observe(`note ${i} about the email`, `op-many-${i}`)]);
  assert.is(many.context.observedOps?.length, TASK_OPS_KEPT);
  assert.is(many.context.observedOps?.[0]?.opId, 'op-many-10');
});

t('router - a repeated opId is answered with the task as it is and the move it decided, and counted once', async (ctx) => {
  const nc = ctx.nc!;
  const begun = await ask(nc, 'task.begin', { v: 1, agent: 'agent-c', text: 'Reply to the email from Dana about the Q3 report' });
  assert.is(begun['domain'], 'email');
  const task = begun['task'] as string;
  const first = { v: 1, task, opId: 'obs-1', text: 'Dana would rather meet in person next week to go over it' };
  const a = await ask(nc, 'task.observe', first);
  assert.is(a['rerouted'], null);
  assert.is(a['repeated'], undefined);
  // The reply was lost; the agent sends the same request again.
  const again = await ask(nc, 'task.observe', first);
  assert.is(again['repeated'], true);
  assert.is(again['domain'], 'email');
  assert.is(again['rerouted'], null);

  const second = { v: 1, task, opId: 'obs-2', text: 'Find a 30 minute slot on Tuesday or Wednesday and send her an invite' };
  const b = await ask(nc, 'task.observe', second);
  assert.equal(b['rerouted'], { from: 'email', to: 'calendar' });
  const bAgain = await ask(nc, 'task.observe', second, true);
  assert.is(bAgain['repeated'], true);
  assert.is(bAgain['domain'], 'calendar');
  assert.equal(bAgain['rerouted'], { from: 'email', to: 'calendar' }, 'the repeat still tells the agent its task moved');
  assert.ok(Array.isArray(bAgain['context']));

  const state = await ask(nc, 'task.get', { v: 1, task });
  assert.is(kinds(state), 'begin observe observe reroute', 'each observation counted once, one move');

  // JSON callers that send no opId keep working, without the dedup.
  await ask(nc, 'task.observe', { v: 1, task, text: 'Tuesday at 11 works' }, true);
  await ask(nc, 'task.observe', { v: 1, task, text: 'Tuesday at 11 works' }, true);
  assert.is(kinds(await ask(nc, 'task.get', { v: 1, task })), 'begin observe observe reroute observe observe');
  const bad = await ask(nc, 'task.observe', { v: 1, task, text: 'x', opId: 42 });
  assert.is(bad['error']?.code, 'BAD_REQUEST');
  assert.match(bad['error'].message, /^opId: /);

  // task.end, which the SDK retries on a lost reply, answers a second time too (before: BAD_REQUEST "has ended").
  const ended = await ask(nc, 'task.end', { v: 1, task });
  assert.is(ended['state'], 'ended');
  const endedAgain = await ask(nc, 'task.end', { v: 1, task });
  assert.is(endedAgain['state'], 'ended', JSON.stringify(endedAgain));
  assert.is(kinds(endedAgain), kinds(ended), 'ended once');
  assert.is((await ask(nc, 'task.observe', { v: 1, task, text: 'late', opId: 'obs-late' }))['error']?.code, 'BAD_REQUEST');
});

t('client - observe sends an opId, so its retries are counted once', async (ctx) => {
  const seen: Record<string, unknown>[] = [];
  // A plain subscriber gets a copy of every request besides the routers' queue group.
  const snoop = ctx.nc!.subscribe(memSubject('task.observe'), { callback: (_err, msg) => void seen.push(decodePayload(msg.data, 'msgpack') as Record<string, unknown>) });
  const client = await connectClient({ connection: ctx.connections[0]!, agent: 'agent-sdk' });
  const begun = await client.task.begin('Reply to the email from Dana about the invoice');
  await client.task.observe(begun.task, 'she attached the invoice as a PDF');
  await client.task.observe(begun.task, 'and asked for a receipt');
  snoop.unsubscribe();
  const opIds = seen.map((b) => b['opId']);
  assert.is(opIds.length, 2);
  assert.type(opIds[0], 'string');
  assert.is.not(opIds[0], opIds[1]);
  await client.close();
});

t('concurrency - observations sent at once by two agents through two routers are all counted', async (ctx) => {
  const clients: ShardmindClient[] = [];
  for (const [i, nc] of ctx.connections.entries()) clients.push(await connectClient({ connection: nc, agent: `agent-${i}` }));
  const begun = await clients[0]!.task.begin('Reply to the email from Dana about the contract');
  const n = 24;
  await Promise.all(
    Array.from({ length: n }, (_, i) => clients[i % 2]!.task.observe(begun.task, `a note ${i} about the contract email`)),
  );
  const state = await ask(ctx.nc!, 'task.get', { v: 1, task: begun.task });
  const observed = state['history'].filter((h: { kind: string }) => h.kind === 'observe').length;
  // Before, each step saved over whatever was there: most of these were lost.
  assert.is(observed, n, `${observed} of ${n} observations counted`);
  for (const c of clients) await c.close();
});

t('concurrency - an explicit reroute sent among observations is kept, and so is every observation', async (ctx) => {
  const clients: ShardmindClient[] = [];
  for (const [i, nc] of ctx.connections.entries()) clients.push(await connectClient({ connection: nc, agent: `agent-r${i}` }));
  const begun = await clients[0]!.task.begin('Reply to the email from Dana about the offsite');
  const n = 12;
  const observes = Array.from({ length: n }, (_, i) => clients[i % 2]!.task.observe(begun.task, `a note ${i} about the offsite email`));
  const moved = clients[1]!.task.reroute(begun.task, 'files');
  await Promise.all([...observes, moved]);
  const state = await ask(ctx.nc!, 'task.get', { v: 1, task: begun.task });
  const history = state['history'] as { kind: string; why?: string; to?: string }[];
  assert.is(history.filter((h) => h.kind === 'observe').length, n);
  assert.ok(history.some((h) => h.kind === 'reroute' && h.why === 'explicit' && h.to === 'files'), JSON.stringify(history));
  assert.ok(state['visited'].includes('files'));
  for (const c of clients) await c.close();
});

t.run();
