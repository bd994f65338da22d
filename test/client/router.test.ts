/**
 * The client's default path, through the router (`sm.mem.*`), against a real host and a real router on a real
 * nats-server: classified writes, fan-out recall with read-your-writes, calls that name only a fact id, and tasks.
 * The domains are the shipped ones (calendar, email, files) with their classifier seeds.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect as natsConnect, headers, type NatsConnection } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { connect, ErrorCode, ShardmindError, type ShardmindClient } from '../../client/index.ts';
import { CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE, decodePayload, memSubject } from '../../protocol/index.ts';
import { resolveConfig, type ClusterConfigInput } from '../../config/index.ts';
import { startRouter, type Router } from '../../router/index.ts';
import shipped from '../../cluster.config.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';
import { NODE } from './one-mini.ts';

interface Ctx {
  nats: NatsServerProcess;
  hosts: HostCluster;
  nc: NatsConnection;
  router: Router | undefined;
  client: ShardmindClient;
}

/** The shipped domains on one Mini. */
function shippedOnOneMini(url: string): ClusterConfigInput {
  return {
    ...shipped,
    nodes: [{ name: NODE, nats: [url] }],
    placement: Object.fromEntries(shipped.domains.map((d) => [d.name, { leader: NODE, standbys: [] }])),
    replication: { replicas: 1 },
  };
}

const routed = suite<Ctx>('client through the router');

routed.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  try {
    const config = shippedOnOneMini(ctx.nats.url);
    ctx.hosts = await startHosts({ config });
    ctx.nc = await natsConnect({ servers: ctx.nats.url });
    // Hosts run a router too once it is wired in; a second one in the same queue group is harmless.
    ctx.router = await startRouter(ctx.nc, resolveConfig(config), { node: NODE, log: () => {} });
    ctx.client = await connect({ connection: ctx.nc, agent: 'agent-a', node: NODE });
  } catch (err) {
    await ctx.router?.stop();
    await ctx.nc?.close();
    await ctx.hosts?.stop();
    await ctx.nats.destroy();
    throw err;
  }
});

routed.after(async (ctx) => {
  await ctx.client?.close();
  await ctx.router?.stop();
  await ctx.nc?.close();
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

routed('remember without a domain - the router classifies it; recall without one finds it (read-your-writes)', async (ctx) => {
  const r = await ctx.client.remember({
    text: 'The user never takes meetings before 10am',
    subject: 'user',
    predicate: 'earliest_meeting_time',
    object: '10:00',
  });
  assert.is(r.domain, 'calendar');
  const { facts, domains } = await ctx.client.recall({ query: 'when can I book a meeting with the user?' });
  assert.ok(domains.includes('calendar'), domains.join(','));
  assert.ok(facts.some((f) => f.id === r.factId), 'found through the router at once');
  assert.ok(ctx.client.seenSeq('calendar') >= r.seq);
});

routed('named domains, fact-id calls and history - all through sm.mem', async (ctx) => {
  const r = await ctx.client.remember({ text: 'The contract template is in Google Drive under Legal' }, { domain: 'files' });
  assert.is(r.domain, 'files');
  assert.is((await ctx.client.get(r.factId))?.text, 'The contract template is in Google Drive under Legal');
  const retracted = await ctx.client.retract(r.factId);
  assert.is(retracted.status, 'retracted');
  assert.is(retracted.domain, 'files');
  const { facts } = await ctx.client.recall({ query: 'contract template', domain: ['files', 'email'] });
  assert.not.ok(facts.some((f) => f.id === r.factId), 'a retracted fact leaves recall');
});

routed('classify - the shipped seeds put a mail request in email', async (ctx) => {
  const scores = await ctx.client.classify('forward the invoice to accounting by email');
  assert.is(scores[0]?.domain, 'email');
  assert.ok(scores.every((s) => s.p >= 0 && s.p <= 1));
});

routed('tasks - begin, remember in the task, observe a move, recall in the task, end', async (ctx) => {
  const t = await ctx.client.task.begin('reply to Bob about the Q3 report', { domain: 'email' });
  assert.is(t.domain, 'email');
  const r = await ctx.client.remember({ text: 'Bob wants the Q3 report as a PDF attachment' }, { task: t.task });
  assert.is(r.domain, 'email');
  const moved = await ctx.client.task.reroute(t.task, 'calendar');
  assert.is(moved.domain, 'calendar');
  assert.equal(moved.rerouted, { from: 'email', to: 'calendar' });
  const found = await ctx.client.recall({ query: 'Q3 report PDF', task: t.task });
  assert.ok(found.facts.some((f) => f.id === r.factId), 'a task recalls from the domains it visited');
  await ctx.client.task.end(t.task);
});

routed('errors - the router answers bad input and unknown domains with typed errors', async (ctx) => {
  const codeOf = async (p: Promise<unknown>): Promise<string> => {
    try {
      await p;
    } catch (err) {
      assert.instance(err, ShardmindError);
      return (err as ShardmindError).code;
    }
    return 'no error';
  };
  assert.is(await codeOf(ctx.client.remember({ text: 'x' }, { domain: 'nope' })), ErrorCode.UNKNOWN_DOMAIN);
  assert.is(await codeOf(ctx.client.recall({ query: 'x', domain: ['email', 'nope'] })), ErrorCode.UNKNOWN_DOMAIN);
  assert.is(await codeOf(ctx.client.remember({ text: 'x', confidence: 2 })), ErrorCode.BAD_REQUEST);
  const h = headers();
  h.set(CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE);
  const reply = await ctx.nc.request(memSubject('remember'), new TextEncoder().encode('{"v":1,'), { timeout: 5_000, headers: h });
  const body = decodePayload(reply.data, 'json') as { error?: { code: string } };
  assert.is(body.error?.code, ErrorCode.BAD_REQUEST);
});

routed.run();
