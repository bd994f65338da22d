/**
 * The router as it runs in production: inside every `shardmind host` process (queue group `sm-router`), three
 * hosts on a real nats-server. Fan-out with a Mini gone is partial, not fatal; and a task survives `kill -9` of the
 * host whose router was running it: another Mini's router finishes it, with its domain and history intact.
 *
 * Placement: calendar on mini-1 (standby mini-2), email on mini-2 (standby mini-1), files on mini-3 alone — so
 * killing mini-3 silences files for good, and killing mini-1 or mini-2 fails its shard over to the other.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, headers, type NatsConnection } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import type { ClusterConfigInput } from '../../config/index.ts';
import { decodePayload, encodePayload, memSubject } from '../../protocol/index.ts';
import { ROUTER_NODE_HEADER } from '../../router/index.ts';
import shipped from '../../cluster.config.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';

interface Ctx {
  nats?: NatsServerProcess;
  hosts?: HostCluster;
  agent?: NatsConnection;
}

const e2e = suite<Ctx>('router e2e');
const RETRYABLE = new Set(['NOT_LEADER', 'SHARD_MOVED', 'UNAVAILABLE', 'TIMEOUT']);

function config(url: string): ClusterConfigInput {
  return {
    ...shipped,
    cluster: { name: 'router-e2e' },
    nodes: ['mini-1', 'mini-2', 'mini-3'].map((name) => ({ name, nats: [url] })),
    placement: {
      calendar: { leader: 'mini-1', standbys: ['mini-2'] },
      email: { leader: 'mini-2', standbys: ['mini-1'] },
      files: { leader: 'mini-3', standbys: [] },
    },
    replication: { replicas: 1, leaseMs: 1500, heartbeatMs: 250 },
    router: { ...shipped.router, shardTimeoutMs: 1000 },
  };
}

interface Answer {
  body: Record<string, any>;
  node: string;
}

/** One request through whichever router the queue group picks; the reply and the Mini that answered. */
async function ask(nc: NatsConnection, op: string, body: unknown, json = false): Promise<Answer> {
  const encoding = json ? 'json' : 'msgpack';
  const h = headers();
  if (json) h.set('content-type', 'application/json');
  const msg = await nc.request(memSubject(op), encodePayload(body, encoding), { timeout: 8_000, headers: h });
  return { body: decodePayload(msg.data, encoding) as Record<string, any>, node: msg.headers?.get(ROUTER_NODE_HEADER) ?? '' };
}

/** Like a client: repeats a request the cluster refused as retryable (a shard failing over), until a deadline. */
async function askRetrying(nc: NatsConnection, op: string, body: unknown, timeoutMs = 20_000): Promise<Answer> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const a = await ask(nc, op, body).catch((err: Error) => ({ body: { error: { code: 'TIMEOUT', message: err.message } }, node: '' }));
    if (!a.body['error'] || !RETRYABLE.has(a.body['error'].code) || Date.now() > deadline) return a;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function ok(a: Answer, what: string): Record<string, any> {
  assert.not.ok(a.body['error'], `${what}: ${JSON.stringify(a.body['error'])}`);
  return a.body;
}

e2e.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  ctx.hosts = await startHosts({ config: config(ctx.nats.url) });
  ctx.agent = await connect({ servers: ctx.nats.url });
});

e2e.after(async (ctx) => {
  await ctx.agent?.close();
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

e2e('every host runs a router; writes without a domain are classified', async (ctx) => {
  const nc = ctx.agent!;
  const seen = new Set<string>();
  // The queue group spreads requests at random: 60 of them reach all three routers but for a 1-in-10^10 chance.
  for (let i = 0; i < 60 && seen.size < 3; i++) {
    const a = await ask(nc, 'classify', { v: 1, text: 'hello' });
    ok(a, 'classify');
    seen.add(a.node);
  }
  assert.equal([...seen].sort(), ['mini-1', 'mini-2', 'mini-3']);
  const rule = ok(
    await askRetrying(nc, 'remember', {
      v: 1,
      agent: 'agent-a',
      fact: { text: 'The user never takes meetings before 10am', subject: 'user', predicate: 'earliest_meeting_time', object: '10:00' },
    }),
    'remember the rule',
  );
  assert.is(rule.domain, 'calendar');
  const notes = ok(
    await askRetrying(nc, 'remember', { v: 1, agent: 'agent-a', fact: { text: 'The meeting notes are saved in the Team folder on the shared drive' } }),
    'remember a file fact',
  );
  assert.is(notes.domain, 'files');
});

e2e('fan-out - with the files Mini killed, recall is partial, not fatal', async (ctx) => {
  const nc = ctx.agent!;
  const full = ok(await askRetrying(nc, 'recall', { v: 1, query: 'send the meeting notes to the team' }), 'recall, all up');
  assert.ok(full.domains.includes('files') && full.domains.length >= 2, `asked ${full.domains}`);
  assert.is(full.missing, undefined);
  assert.ok(full.facts.some((f: { text: string }) => /Team folder/.test(f.text)));

  ctx.hosts!.host('mini-3').kill('SIGKILL');
  await ctx.hosts!.host('mini-3').waitExit();
  const partial = ok(await askRetrying(nc, 'recall', { v: 1, query: 'send the meeting notes to the team' }), 'recall, files gone');
  assert.ok(partial.domains.includes('files'));
  assert.equal(partial.missing.map((m: { domain: string }) => m.domain), ['files']);
  assert.ok(partial.facts.every((f: { domain: string }) => f.domain !== 'files'));
});

e2e('task - kill -9 of the host running the router mid-task; another Mini finishes it, domain and history intact', async (ctx) => {
  const nc = ctx.agent!;
  const begun = await askRetrying(nc, 'task.begin', { v: 1, agent: 'agent-c', text: "Reply to Dana's email about the Q3 report" });
  const task = ok(begun, 'task.begin').task as string;
  assert.is(begun.body.domain, 'email');
  ok(await askRetrying(nc, 'remember', { v: 1, agent: 'agent-c', task, fact: { text: 'Dana wants the Q3 report numbers before Friday' } }), 'remember in task');
  const hint = await askRetrying(nc, 'task.observe', { v: 1, task, text: 'Dana would rather meet in person next week to go over it' });
  assert.is(ok(hint, 'observe 1').rerouted, null);

  // The Mini whose router served the last step dies without a word.
  const victim = hint.node;
  assert.ok(['mini-1', 'mini-2'].includes(victim), `served by ${victim}`);
  const survivor = victim === 'mini-1' ? 'mini-2' : 'mini-1';
  ctx.hosts!.host(victim).kill('SIGKILL');
  await ctx.hosts!.host(victim).waitExit();
  // Its shard fails over to the survivor (the client's retries would ride this out; waiting keeps the test exact).
  const deadline = Date.now() + 20_000;
  for (;;) {
    const status = await ctx.hosts!.host(survivor).status().catch(() => undefined);
    if (status?.shards.every((s) => s.state === 'leading')) break;
    if (Date.now() > deadline) throw new Error(`${survivor} did not take over:\n${ctx.hosts!.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }

  const moved = await askRetrying(nc, 'task.observe', {
    v: 1,
    task,
    text: 'Find a 30 minute slot on Tuesday or Wednesday and send her an invite',
  });
  assert.is(moved.node, survivor);
  const m = ok(moved, 'observe 2');
  assert.equal(m.rerouted, { from: 'email', to: 'calendar' });
  assert.ok(m.context.some((f: { text: string }) => /before 10am/.test(f.text)), JSON.stringify(m.context));

  const before = ok(await askRetrying(nc, 'recall', { v: 1, task, query: 'Dana Q3 report numbers' }), 'recall in task');
  assert.equal(before.domains, ['calendar', 'email']);
  assert.ok(before.facts.some((f: { text: string }) => /numbers before Friday/.test(f.text)));

  const summary = ok(await askRetrying(nc, 'task.end', { v: 1, task }), 'task.end');
  assert.is(summary.domain, 'calendar');
  assert.equal(summary.visited, ['calendar', 'email']);
  assert.equal(
    summary.history.map((h: { kind: string }) => h.kind),
    ['begin', 'remember', 'observe', 'observe', 'reroute', 'end'],
  );
  assert.is(summary.history[1].text, 'Dana wants the Q3 report numbers before Friday');
});

e2e.run();
