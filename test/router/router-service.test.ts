/**
 * The router service in this process against real shards: a real nats-server and real `shardmind host` processes
 * serving calendar and email, with the files Mini switched off so that a fan-out reaching files is partial. Covers
 * routing of remember (classified vs explicit, and which of them teach the classifier), fan-out recall with a missing
 * domain, classify, tasks that re-route and bring context, and bad input at the edge.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, headers, type NatsConnection } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { resolveConfig, type ClusterConfigInput } from '../../config/index.ts';
import { decodePayload, encodePayload, memSubject } from '../../protocol/index.ts';
import { TaskStore, startRouter, stepTask, type Router } from '../../router/index.ts';
import shipped from '../../cluster.config.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';

interface Ctx {
  nats?: NatsServerProcess;
  hosts?: HostCluster;
  nc?: NatsConnection;
  router?: Router;
}

const t = suite<Ctx>('router service');

function config(url: string): ClusterConfigInput {
  return {
    ...shipped,
    cluster: { name: 'router-test' },
    nodes: ['mini-1', 'mini-2', 'mini-3'].map((name) => ({ name, nats: [url] })),
    // files has no standby, and mini-3 is never started: files stays silent for the whole suite.
    placement: {
      calendar: { leader: 'mini-1', standbys: ['mini-2'] },
      email: { leader: 'mini-2', standbys: ['mini-1'] },
      files: { leader: 'mini-3', standbys: [] },
    },
    replication: { replicas: 1, leaseMs: 1500, heartbeatMs: 250 },
    router: { ...shipped.router, shardTimeoutMs: 800 },
  };
}

async function ask(nc: NatsConnection, op: string, body: unknown, json = false): Promise<Record<string, any>> {
  const encoding = json ? 'json' : 'msgpack';
  const h = headers();
  if (json) h.set('content-type', 'application/json');
  const msg = await nc.request(memSubject(op), encodePayload(body, encoding), { timeout: 5_000, headers: h });
  return decodePayload(msg.data, encoding) as Record<string, any>;
}

async function eventually<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

t.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  const input = config(ctx.nats.url);
  ctx.hosts = await startHosts({ config: input, nodes: ['mini-1', 'mini-2'] });
  ctx.nc = await connect({ servers: ctx.nats.url });
  ctx.router = await startRouter(ctx.nc, resolveConfig({ ...input, dataDir: ctx.hosts.dataDir }), {
    node: 'test',
    log: () => {},
  });
});

t.after(async (ctx) => {
  await ctx.router?.stop();
  await ctx.nc?.close();
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

t('remember - without a domain goes to the top class and does not teach; an explicit domain teaches', async (ctx) => {
  const nc = ctx.nc!;
  const before = ctx.router!.learned();
  const classified = await ask(nc, 'remember', {
    v: 1,
    agent: 'agent-a',
    fact: { text: 'The user prefers PDF attachments over links in emails', subject: 'user', predicate: 'prefers_attachment_format', object: 'pdf' },
  });
  assert.is(classified.domain, 'email');
  assert.ok(classified.seq > 0);
  const explicit = await ask(nc, 'remember', {
    v: 1,
    agent: 'agent-a',
    domain: 'calendar',
    opId: 'op-explicit-1',
    fact: { text: 'The user never takes meetings before 10am', subject: 'user', predicate: 'earliest_meeting_time', object: '10:00' },
  });
  assert.is(explicit.domain, 'calendar');
  await eventually('the explicit write to be learned', () => (ctx.router!.learned() === before + 1 ? true : undefined));
});

t('recall - fans out to the domains in play, merges by score, reports a silent domain as missing', async (ctx) => {
  const reply = await ask(ctx.nc!, 'recall', { v: 1, query: 'send the meeting notes to the team' });
  assert.ok(reply.domains.length >= 2, `asked ${reply.domains}`);
  assert.ok(reply.domains.includes('files'));
  assert.equal(reply.missing.map((m: { domain: string }) => m.domain), ['files']);
  assert.ok(Array.isArray(reply.facts));
  for (let i = 1; i < reply.facts.length; i++) assert.ok(reply.facts[i - 1].score >= reply.facts[i].score);
  assert.is(reply.classification.length, 3);

  const named = await ask(ctx.nc!, 'recall', { v: 1, query: 'attachments', domain: 'email' });
  assert.equal(named.domains, ['email']);
  assert.ok(named.facts.some((f: { text: string }) => /PDF attachments/.test(f.text)));
  assert.ok(named.seqs.email >= 1);

  const allGone = await ask(ctx.nc!, 'recall', { v: 1, query: 'where is the spreadsheet', domain: 'files' });
  // No leader: the hosts' shard guard says NOT_LEADER, or nobody answers and the router says UNAVAILABLE.
  assert.ok(['UNAVAILABLE', 'NOT_LEADER'].includes(allGone.error.code), allGone.error.code);
  assert.is(allGone.error.retryable, true);
});

t('classify - JSON in, JSON out, a distribution best first', async (ctx) => {
  const reply = await ask(ctx.nc!, 'classify', { v: 1, text: 'move my 3pm call with Dana to Thursday' }, true);
  assert.is(reply.domains[0].domain, 'calendar');
  assert.ok(Math.abs(reply.domains.reduce((s: number, d: { p: number }) => s + d.p, 0) - 1) < 1e-9);
});

t('task - an email that turns into a meeting request re-routes to calendar and brings the 10am rule', async (ctx) => {
  const nc = ctx.nc!;
  const begun = await ask(nc, 'task.begin', { v: 1, agent: 'agent-c', text: 'Reply to the email from Dana about the Q3 report' });
  assert.is(begun.domain, 'email');
  const task = begun.task as string;
  const note = await ask(nc, 'remember', { v: 1, agent: 'agent-c', task, fact: { text: 'Dana asked for the Q3 report by email' } });
  assert.is(note.domain, 'email');

  // One calendar-sounding sentence is not enough to move the task …
  let observed = await ask(nc, 'task.observe', { v: 1, task, text: 'Dana would rather meet in person next week to go over it' });
  assert.is(observed.rerouted, null);
  assert.is(observed.domain, 'email');
  // … a second one is.
  observed = await ask(nc, 'task.observe', { v: 1, task, text: 'Find a 30 minute slot on Tuesday or Wednesday and send her an invite' });
  assert.equal(observed.rerouted, { from: 'email', to: 'calendar' });
  assert.is(observed.domain, 'calendar');
  assert.ok(observed.context.some((f: { text: string }) => /before 10am/.test(f.text)), JSON.stringify(observed.context));

  // Facts remembered before the move stay reachable from the task (it asks every domain it visited).
  const recalled = await ask(nc, 'recall', { v: 1, task, query: 'Dana Q3 report' });
  assert.equal(recalled.domains, ['calendar', 'email']);
  assert.ok(recalled.facts.some((f: { text: string }) => /Q3 report/.test(f.text)));

  const afterMove = await ask(nc, 'remember', { v: 1, agent: 'agent-c', task, fact: { text: 'Meeting with Dana set for Tuesday 11am' } });
  assert.is(afterMove.domain, 'calendar');

  const explicit = await ask(nc, 'task.reroute', { v: 1, task, domain: 'email' });
  assert.equal(explicit.rerouted, { from: 'calendar', to: 'email' });
  const ended = await ask(nc, 'task.end', { v: 1, task });
  assert.is(ended.state, 'ended');
  assert.equal(ended.visited, ['email', 'calendar']);
  const kinds = ended.history.map((h: { kind: string }) => h.kind).join(' ');
  assert.is(kinds, 'begin remember observe observe reroute remember reroute end');
  const late = await ask(nc, 'task.observe', { v: 1, task, text: 'one more thing' });
  assert.is(late.error.code, 'BAD_REQUEST');
});

t('task - a move left half done by a dead router is finished by the next router that touches the task', async (ctx) => {
  const nc = ctx.nc!;
  const begun = await ask(nc, 'task.begin', { v: 1, agent: 'agent-c', text: 'Reply to the email from Dana about the invoice' });
  const task = begun.task as string;
  // What a router leaves behind if it dies between deciding a move and fetching the new domain's context.
  const store = await TaskStore.open(nc, { replicas: 1 });
  const halfway = stepTask(await store.load(task), [{ type: 'REROUTE', at: Date.now(), to: 'calendar' }]);
  assert.is(halfway.state, 'rerouting');
  await store.save(task, halfway.persisted);

  const next = await ask(nc, 'task.observe', { v: 1, task, text: 'ok' });
  assert.equal(next.rerouted, { from: 'email', to: 'calendar' });
  assert.is(next.domain, 'calendar');
  assert.ok(next.context.some((f: { text: string }) => /before 10am/.test(f.text)));
  const state = await ask(nc, 'task.get', { v: 1, task });
  assert.is(state.state, 'active');
  assert.equal(state.visited, ['calendar', 'email']);
});

t('edge - bad input gets a clear error and changes nothing', async (ctx) => {
  const nc = ctx.nc!;
  const noText = await ask(nc, 'remember', { v: 1, agent: 'a', fact: {} }, true);
  assert.is(noText.error.code, 'BAD_REQUEST');
  assert.match(noText.error.message, /fact\.text/);
  const badDomain = await ask(nc, 'recall', { v: 1, query: 'x', domain: 'weather' });
  assert.is(badDomain.error.code, 'UNKNOWN_DOMAIN');
  const noTask = await ask(nc, 'task.observe', { v: 1, task: 't-nope', text: 'hello' });
  assert.is(noTask.error.code, 'NOT_FOUND');
  const unknownOp = await ask(nc, 'teleport', { v: 1 });
  assert.is(unknownOp.error.code, 'BAD_REQUEST');
  const garbage = await nc.request(memSubject('recall'), new TextEncoder().encode('{not json'), {
    timeout: 5_000,
    headers: (() => {
      const h = headers();
      h.set('content-type', 'application/json');
      return h;
    })(),
  });
  assert.is((decodePayload(garbage.data, 'json') as any).error.code, 'BAD_REQUEST');
});

t.run();
