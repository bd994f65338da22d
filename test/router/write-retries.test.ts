/**
 * A write is applied once however the router retries it, and however the agent does. Real nats-server, one real
 * `shardmind host` (its router answers `sm.mem.*`).
 *
 * - A refusal can follow an applied write (a write-pipeline break, the shard guard, a step-down responder), and the
 *   router asks again after one: a `remember` the agent sent without an opId goes to the shard with the router's own,
 *   so the second attempt answers from the first instead of confirming the fact twice (review-session10 finding 4).
 * - A `remember` without a domain retried with the same opId goes where its first attempt went, even when the
 *   classifier has learned otherwise in between or its task has re-routed; so does a `remember_batch` item
 *   (finding 3).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, type NatsConnection, type Subscription } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { decodePayload, encodePayload, memSubject, shardSubject } from '../../protocol/index.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';
import { oneMiniConfig } from '../client/one-mini.ts';

interface Ctx {
  nats?: NatsServerProcess;
  hosts?: HostCluster;
  nc?: NatsConnection;
}

const t = suite<Ctx>('router: retried writes apply once');

async function ask(nc: NatsConnection, op: string, body: unknown): Promise<Record<string, any>> {
  const msg = await nc.request(memSubject(op), encodePayload(body, 'msgpack'), { timeout: 8_000 });
  return decodePayload(msg.data, 'msgpack') as Record<string, any>;
}

function ok(reply: Record<string, any>, what: string): Record<string, any> {
  assert.not.ok(reply['error'], `${what}: ${JSON.stringify(reply['error'])}`);
  return reply;
}

t.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  ctx.hosts = await startHosts({ config: oneMiniConfig(ctx.nats.url) });
  ctx.nc = await connect({ servers: ctx.nats.url });
  // The host is ready once its shards are; its router subscribes once its buckets and streams are open.
  const deadline = Date.now() + 20_000;
  for (;;) {
    const answered = await ask(ctx.nc, 'classify', { v: 1, text: 'x' }).then(() => true, () => false);
    if (answered) break;
    if (Date.now() > deadline) throw new Error('the router never answered');
    await new Promise((r) => setTimeout(r, 50));
  }
});

t.after(async (ctx) => {
  await ctx.nc?.close();
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

t('a remember without an opId, refused once while the leader applied it, is applied once', async (ctx) => {
  const nc = ctx.nc!;
  // A second responder on the shard's subject answers the first request NOT_LEADER at once, as the shard guard or
  // a step-down responder does while the leader also takes it; it stays silent after that.
  let refusals = 0;
  const refuser: Subscription = nc.subscribe(shardSubject('email', 'remember'), {
    callback: (_e, m) => {
      if (refusals++ > 0) return;
      m.respond(encodePayload({ v: 1, error: { code: 'NOT_LEADER', message: 'refused while the leader applies', retryable: true } }, 'msgpack'));
    },
  });
  await nc.flush();
  try {
    const reply = ok(
      await ask(nc, 'remember', { v: 1, agent: 'a', domain: 'email', fact: { text: 'Erin sends invoices on Fridays', confidence: 0.6 } }),
      'remember',
    );
    assert.ok(refusals >= 2, `the router asked the shard ${refusals} time(s); the test needs it to have retried`);
    assert.is(reply['status'], 'created', JSON.stringify(reply));
    const got = ok(await ask(nc, 'get', { v: 1, factId: reply['factId'], minSeq: { email: reply['seq'] } }), 'get');
    assert.is(got['fact'].confidence, 0.6, 'confirmed twice by one observation');
  } finally {
    refuser.unsubscribe();
  }
});

t('every write the router asks again after a refusal carries one opId, the same on every attempt', async (ctx) => {
  const nc = ctx.nc!;
  const fact = ok(await ask(nc, 'remember', { v: 1, agent: 'a', domain: 'email', fact: { text: 'Femi answers within a day' } }), 'remember');
  const writes: [string, object][] = [
    ['remember', { v: 1, agent: 'a', domain: 'email', fact: { text: 'Gil prefers short replies' } }],
    ['retract', { v: 1, agent: 'a', factId: fact['factId'] }],
    ['forget', { v: 1, agent: 'a', factId: fact['factId'] }],
    ['entity', { v: 1, agent: 'a', domain: 'email', entity: { id: 'gil', name: 'Gil' } }],
  ];
  for (const [op, body] of writes) {
    // Sees every attempt the router makes; refuses the first, as a guard racing the leader does.
    const opIds: unknown[] = [];
    const refuser = nc.subscribe(shardSubject('email', op), {
      callback: (_e, m) => {
        opIds.push((decodePayload(m.data, 'msgpack') as Record<string, unknown>)['opId']);
        if (opIds.length === 1) m.respond(encodePayload({ v: 1, error: { code: 'NOT_LEADER', message: 'refused', retryable: true } }, 'msgpack'));
      },
    });
    await nc.flush();
    try {
      ok(await ask(nc, op, body), op);
      assert.ok(opIds.length >= 2, `${op}: the router asked ${opIds.length} time(s)`);
      assert.type(opIds[0], 'string', `${op} went without an opId`);
      assert.ok(opIds.every((o) => o === opIds[0]), `${op}: ${JSON.stringify(opIds)}`);
    } finally {
      refuser.unsubscribe();
    }
  }
});

t('a classified remember retried with its opId after the classifier changed its mind goes where it first went', async (ctx) => {
  const nc = ctx.nc!;
  const text = 'remember the quarterly budget review with Dana';
  const first = ok(await ask(nc, 'remember', { v: 1, agent: 'a', opId: 'op-classified-1', fact: { text } }), 'first attempt');
  const other = first['domain'] === 'email' ? 'files' : 'email';
  // Other agents teach the classifier, with explicit domains, that this kind of text belongs elsewhere.
  const deadline = Date.now() + 20_000;
  for (let i = 0; ; i++) {
    const top = ok(await ask(nc, 'classify', { v: 1, text }), 'classify')['domains'][0].domain;
    if (top === other) break;
    if (Date.now() > deadline) throw new Error(`the classifier never moved to ${other} (still ${top})`);
    ok(await ask(nc, 'remember', { v: 1, agent: 'b', opId: `op-teach-${i}`, domain: other, fact: { text: `${text} ${i}` } }), 'teach');
  }
  const retried = ok(await ask(nc, 'remember', { v: 1, agent: 'a', opId: 'op-classified-1', fact: { text } }), 'retry');
  assert.is(retried['domain'], first['domain']);
  assert.is(retried['factId'], first['factId']);
  assert.is(retried['duplicate'], true);
});

t('a task remember and a batch item retried with their opIds after the task re-routed go where they first went', async (ctx) => {
  const nc = ctx.nc!;
  const task = ok(await ask(nc, 'task.begin', { v: 1, agent: 'a', text: 'plan the offsite', domain: 'calendar' }), 'task.begin')['task'];
  const one = { v: 1, agent: 'a', opId: 'op-task-1', task, fact: { text: 'the offsite is in Lisbon' } };
  const batch = { v: 1, agent: 'a', items: [{ opId: 'op-task-batch-1', task, fact: { text: 'the offsite has twelve people' } }] };
  const first = ok(await ask(nc, 'remember', one), 'remember');
  const firstBatch = ok(await ask(nc, 'remember_batch', batch), 'remember_batch')['results'][0];
  assert.is(first['domain'], 'calendar');
  assert.is(firstBatch['domain'], 'calendar');
  ok(await ask(nc, 'task.reroute', { v: 1, task, domain: 'email' }), 'task.reroute');
  // A new write of the task goes to its new domain; the retries go where their first attempts went.
  assert.is(ok(await ask(nc, 'remember', { ...one, opId: 'op-task-2' }), 'new write')['domain'], 'email');
  const retried = ok(await ask(nc, 'remember', one), 'retried remember');
  assert.equal([retried['domain'], retried['factId'], retried['duplicate']], ['calendar', first['factId'], true]);
  const retriedBatch = ok(await ask(nc, 'remember_batch', batch), 'retried batch')['results'][0];
  assert.equal([retriedBatch['domain'], retriedBatch['factId'], retriedBatch['duplicate']], ['calendar', firstBatch['factId'], true]);
});

t.run();
