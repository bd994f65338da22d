/**
 * The change feed (`sm.evt.<domain>`, `memory.watch`): what one agent remembers, supersedes, forgets or says about
 * an entity reaches another agent's watcher as it is committed — once, with who did it; a retried write is not
 * announced twice; a subject filter and a domain filter narrow it; a stretch of the log that went by unannounced is
 * reported as a gap; garbage on the subject is ignored. Real nats-server, real host process.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect as natsConnect, type NatsConnection } from 'nats';
import { connect, type Change, type ShardmindClient } from '../../client/index.ts';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import type { ClusterConfigInput } from '../../config/index.ts';
import { encodePayload, eventSubject } from '../../protocol/index.ts';
import shipped from '../../cluster.config.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';

interface Ctx {
  nats?: NatsServerProcess;
  hosts?: HostCluster;
  a?: ShardmindClient;
  b?: ShardmindClient;
  nc?: NatsConnection;
}

const t = suite<Ctx>('change feed');

function config(url: string): ClusterConfigInput {
  return {
    ...shipped,
    cluster: { name: 'feed-test' },
    nodes: [{ name: 'mini-1', nats: [url] }],
    placement: Object.fromEntries(shipped.domains.map((d) => [d.name, { leader: 'mini-1', standbys: [] }])),
    replication: { replicas: 1, leaseMs: 1500, heartbeatMs: 250 },
  };
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  ctx.hosts = await startHosts({ config: config(ctx.nats.url) });
  ctx.a = await connect({ servers: ctx.nats.url, agent: 'agent-a', node: 'mini-1' });
  ctx.b = await connect({ servers: ctx.nats.url, agent: 'agent-b', node: 'mini-3' });
  ctx.nc = await natsConnect({ servers: ctx.nats.url });
});

t.after(async (ctx) => {
  await ctx.a?.close();
  await ctx.b?.close();
  await ctx.nc?.close();
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

t('what agent A does reaches agent B’s watcher: created, superseded, entity, forgotten — once each', async (ctx) => {
  const email: Change[] = [];
  const aboutUser: Change[] = [];
  const calendar: Change[] = [];
  const stops = [
    ctx.b!.watch({ domain: 'email' }, (c) => email.push(c)),
    ctx.b!.watch({ subject: 'user' }, (c) => aboutUser.push(c)),
    ctx.b!.watch({ domain: 'calendar' }, (c) => calendar.push(c)),
  ];
  await ctx.b!.connection.flush();
  try {
    const first = await ctx.a!.remember(
      { text: 'The user prefers PDF attachments over links', subject: 'user', predicate: 'prefers_attachment_format', object: 'pdf' },
      { domain: 'email', opId: 'feed-op-1' },
    );
    const created = await until('the created event', () => email.find((c) => c.factId === first.factId));
    assert.equal(
      [created.domain, created.op, created.status, created.text, created.subject, created.object, created.agent],
      ['email', 'assert', 'created', 'The user prefers PDF attachments over links', 'user', 'pdf', 'agent-a'],
    );
    // The same opId again: applied once, announced once.
    await ctx.a!.remember({ text: 'The user prefers PDF attachments over links', subject: 'user', predicate: 'prefers_attachment_format', object: 'pdf' }, { domain: 'email', opId: 'feed-op-1' });

    const second = await ctx.a!.remember(
      { text: 'The user now prefers links', subject: 'user', predicate: 'prefers_attachment_format', object: 'link' },
      { domain: 'email' },
    );
    const superseding = await until('the superseding event', () => email.find((c) => c.factId === second.factId));
    assert.is(superseding.status, 'superseded_previous');
    assert.equal(superseding.superseded, [first.factId]);

    await ctx.a!.entity({ id: 'bob-smith', aliases: ['Bob'] }, { domain: 'email' });
    await until('the entity event', () => email.find((c) => c.op === 'entity' && c.entity === 'bob-smith'));
    await ctx.a!.forget(second.factId);
    await until('the forget event', () => email.find((c) => c.status === 'forgotten' && c.factId === second.factId));

    assert.is(email.filter((c) => c.factId === first.factId).length, 1, 'the retried write was announced once');
    assert.ok(aboutUser.length >= 2 && aboutUser.every((c) => c.subject === 'user'), JSON.stringify(aboutUser));
    assert.equal(calendar, [], 'a domain filter keeps other domains out');
  } finally {
    for (const stop of stops) stop();
  }
});

t('a stretch of the log that went by unannounced is reported as a gap; garbage is ignored', async (ctx) => {
  const gaps: { domain: string; fromSeq: number; toSeq: number }[] = [];
  const seen: Change[] = [];
  // A domain no shard serves, so only this test's messages are on it.
  const stop = ctx.b!.watch({ domain: 'feedtest', onGap: (g) => gaps.push(g) }, (c) => seen.push(c));
  await ctx.b!.connection.flush();
  try {
    const event = { seq: 3, op: 'assert', status: 'created', factId: 'feedtest:0000000003:0', text: 'x', agent: 'a' };
    const send = (m: unknown) => ctx.nc!.publish(eventSubject('feedtest'), encodePayload(m, 'msgpack'));
    send({ v: 1, domain: 'feedtest', fromSeq: 1, toSeq: 3, events: [event] });
    ctx.nc!.publish(eventSubject('feedtest'), new Uint8Array([0xc1, 0xff]));
    send({ v: 1, domain: 'feedtest', fromSeq: 4, toSeq: 4, events: [] });
    send({ v: 1, domain: 'feedtest', fromSeq: 9, toSeq: 9, events: [{ ...event, seq: 9, factId: 'feedtest:0000000009:0' }] });
    await ctx.nc!.flush();
    await until('both events', () => (seen.length === 2 ? true : undefined));
    assert.equal(gaps, [{ domain: 'feedtest', fromSeq: 5, toSeq: 8 }]);
  } finally {
    stop();
  }
});

t('junk events and a callback that throws leave the watcher (and its connection) working', async (ctx) => {
  const seen: Change[] = [];
  const errors: unknown[] = [];
  let thrown = 0;
  const stop = ctx.b!.watch({ domain: 'feedjunk', onError: (e) => errors.push(e) }, (c) => {
    seen.push(c);
    if (thrown++ === 0) throw new Error('a bug in the agent');
  });
  await ctx.b!.connection.flush();
  try {
    const event = { seq: 3, op: 'assert', status: 'created', factId: 'feedjunk:0000000003:0', text: 'x', agent: 'a' };
    const send = (m: unknown) => ctx.nc!.publish(eventSubject('feedjunk'), encodePayload(m, 'msgpack'));
    send({ v: 1, domain: 'feedjunk', fromSeq: 1, toSeq: 1, events: [null, 7, event] });
    send({ v: 1, domain: 42, fromSeq: 'x', toSeq: 2, events: [event] });
    send({ v: 1, domain: 'feedjunk', fromSeq: 2, toSeq: 2, events: [{ ...event, seq: 2 }] });
    await ctx.nc!.flush();
    await until('both good events', () => (seen.length === 2 ? true : undefined));
    assert.is(errors.length, 1);
    assert.match((errors[0] as Error).message, 'a bug in the agent');
    // The connection still answers requests (before, the throw ended nats.js's read loop).
    assert.ok((await ctx.b!.classify('schedule a meeting')).length > 0);
  } finally {
    stop();
  }
});

t.run();
