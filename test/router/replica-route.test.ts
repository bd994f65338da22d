/**
 * The router and replica reads: a read through `sm.mem.*` that carries `maxStaleMs` is answered by a replica — the
 * one on the router's own Mini when the placement puts a copy there — and says who served it and how stale it may
 * be; without `maxStaleMs` the leader answers as before. Real nats-server, real host processes (each runs a router).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, type NatsConnection } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import type { ClusterConfigInput } from '../../config/index.ts';
import { ROUTER_NODE_HEADER, decodePayload, encodePayload, memSubject } from '../../protocol/index.ts';
import shipped from '../../cluster.config.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';

interface Ctx {
  nats?: NatsServerProcess;
  hosts?: HostCluster;
  nc?: NatsConnection;
}

const t = suite<Ctx>('router replica reads');

function config(url: string): ClusterConfigInput {
  return {
    ...shipped,
    cluster: { name: 'replica-route-test' },
    nodes: ['mini-1', 'mini-2', 'mini-3'].map((name) => ({ name, nats: [url] })),
    // calendar has a copy on every Mini; email only on mini-1 (so a router elsewhere asks any replica).
    placement: {
      calendar: { leader: 'mini-1', standbys: ['mini-2', 'mini-3'] },
      email: { leader: 'mini-1', standbys: [] },
      files: { leader: 'mini-2', standbys: [] },
    },
    replication: { replicas: 1, leaseMs: 1500, heartbeatMs: 250 },
  };
}

interface Answer {
  body: Record<string, any>;
  router: string;
}

async function ask(nc: NatsConnection, op: string, body: unknown): Promise<Answer> {
  const msg = await nc.request(memSubject(op), encodePayload(body, 'msgpack'), { timeout: 5_000 });
  return { body: decodePayload(msg.data, 'msgpack') as Record<string, any>, router: msg.headers?.get(ROUTER_NODE_HEADER) ?? '' };
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

t.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  ctx.hosts = await startHosts({ config: config(ctx.nats.url) });
  ctx.nc = await connect({ servers: ctx.nats.url });
  // Every host's router serves sm.mem.* once up; and followers answer replica reads once they hear the leader.
  await eventually('the routers', async () => ((await ask(ctx.nc!, 'classify', { v: 1, text: 'hello' })).body['domains'] ? true : undefined));
});

t.after(async (ctx) => {
  await ctx.nc?.close();
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

t('a recall with maxStaleMs is answered by the replica on the router’s Mini; without it, by the leader', async (ctx) => {
  const nc = ctx.nc!;
  const wrote = await ask(nc, 'remember', { v: 1, agent: 'a', domain: 'calendar', fact: { text: 'The user never takes meetings before ten' } });
  const seq = wrote.body['seq'] as number;
  const routers = new Set<string>();
  // Requests are spread over the three routers by the queue group: ask until each has answered at least once.
  await eventually('an answer through every router', async () => {
    const a = await ask(nc, 'recall', { v: 1, agent: 'b', domain: 'calendar', query: 'meetings before ten', maxStaleMs: 10_000, minSeq: { calendar: seq } });
    assert.is(a.body['error'], undefined, JSON.stringify(a.body['error']));
    assert.equal(a.body['domains'], ['calendar']);
    assert.is(a.body['facts'][0].text, 'The user never takes meetings before ten', 'read-your-writes through minSeq');
    assert.is(a.body['servedBy'], a.router, `the ${a.router} router asked its own replica`);
    assert.type(a.body['staleMs'], 'number');
    routers.add(a.router);
    return routers.size === 3 ? true : undefined;
  });

  const leader = await ask(nc, 'recall', { v: 1, agent: 'b', domain: 'calendar', query: 'meetings before ten' });
  assert.is(leader.body['servedBy'], undefined, 'without maxStaleMs the leader answers, as before');
  assert.is(leader.body['facts'][0].text, 'The user never takes meetings before ten');
});

t('a domain with no copy on the router’s Mini is read from any replica; fan-outs and history merge the bound', async (ctx) => {
  const nc = ctx.nc!;
  await ask(nc, 'remember', { v: 1, agent: 'a', domain: 'email', fact: { text: 'The user prefers PDF attachments over links' } });
  const seen = new Set<string>();
  await eventually('an email read through a router without a copy', async () => {
    const a = await ask(nc, 'recall', { v: 1, agent: 'b', domain: 'email', query: 'attachments', maxStaleMs: 10_000 });
    assert.is(a.body['error'], undefined, JSON.stringify(a.body['error']));
    assert.is(a.body['servedBy'], 'mini-1', 'only mini-1 holds email');
    seen.add(a.router);
    return [...seen].some((r) => r !== 'mini-1') ? true : undefined;
  });

  const fanned = await ask(nc, 'recall', { v: 1, agent: 'b', domain: ['calendar', 'email'], query: 'meetings attachments', maxStaleMs: 10_000 });
  assert.type(fanned.body['staleMs'], 'number', 'a merged answer is as stale as its stalest part');
  assert.ok(fanned.body['facts'].length >= 2);

  const history = await ask(nc, 'history', { v: 1, agent: 'b', domain: 'calendar', subject: 'user', maxStaleMs: 10_000 });
  assert.is(history.body['error'], undefined, JSON.stringify(history.body['error']));
  assert.type(history.body['staleMs'], 'number');

  const bad = await ask(nc, 'recall', { v: 1, agent: 'b', domain: 'calendar', query: 'x', maxStaleMs: -1 });
  assert.is(bad.body['error']?.code, 'BAD_REQUEST');
  assert.match(bad.body['error'].message, /^maxStaleMs/);
});

t.run();
