/**
 * Entities on the wire (`entity`, `lookup`): one global id written to every domain through the router, found by
 * any alias in every domain, merged on update (aliases and attributes add up, nothing is removed), applied once
 * per domain when retried with the same opId, and a fact remembered about the id recalled by an alias. Real
 * nats-server, real host processes, the TypeScript client.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect as natsConnect, type NatsConnection } from 'nats';
import { connect, type ShardmindClient } from '../../client/index.ts';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import type { ClusterConfigInput } from '../../config/index.ts';
import { decodePayload, encodePayload, shardSubject } from '../../protocol/index.ts';
import shipped from '../../cluster.config.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';

interface Ctx {
  nats?: NatsServerProcess;
  hosts?: HostCluster;
  memory?: ShardmindClient;
  nc?: NatsConnection;
}

const t = suite<Ctx>('entities');
const DOMAINS = shipped.domains.map((d) => d.name).sort();

function config(url: string): ClusterConfigInput {
  return {
    ...shipped,
    cluster: { name: 'entities-test' },
    nodes: ['mini-1', 'mini-2'].map((name) => ({ name, nats: [url] })),
    placement: {
      calendar: { leader: 'mini-1', standbys: ['mini-2'] },
      email: { leader: 'mini-2', standbys: ['mini-1'] },
      files: { leader: 'mini-1', standbys: [] },
    },
    replication: { replicas: 1, leaseMs: 1500, heartbeatMs: 250 },
  };
}

t.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  ctx.hosts = await startHosts({ config: config(ctx.nats.url) });
  ctx.memory = await connect({ servers: ctx.nats.url, agent: 'entity-agent', node: 'mini-1' });
  ctx.nc = await natsConnect({ servers: ctx.nats.url });
});

t.after(async (ctx) => {
  await ctx.memory?.close();
  await ctx.nc?.close();
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

t('an entity is written to every domain, found by any alias, and a fact about it is recalled by an alias', async (ctx) => {
  const memory = ctx.memory!;
  await memory.remember({ text: 'Bob is in the Pacific time zone', subject: 'bob-smith', predicate: 'time_zone', object: 'America/Los_Angeles' }, { domain: 'email' });

  const made = await memory.entity({
    id: 'bob-smith',
    name: 'Bob Smith',
    type: 'person',
    aliases: ['Bob', 'bob@example.com'],
    attributes: { team: 'finance', reportsPerQuarter: 4 },
  });
  assert.equal([...made.domains].sort(), DOMAINS, 'without a domain, every domain takes it: one identity');
  assert.equal(made.missing, []);
  assert.equal([made.entity.name, made.entity.type, made.entity.aliases], ['Bob Smith', 'person', ['Bob', 'bob@example.com']]);

  const views = await memory.lookup('bob@example.com');
  assert.equal(views.map((v) => v.domain).sort(), DOMAINS);
  for (const v of views) assert.equal([v.id, v.attributes], ['bob-smith', { reportsPerQuarter: 4, team: 'finance' }]);

  const byAlias = await memory.recall({ subject: 'Bob', domain: 'email' });
  assert.equal(byAlias.facts.map((f) => f.text), ['Bob is in the Pacific time zone'], 'recall by an alias finds facts about the id');
});

t('an update merges; a retry with the same opId is applied once; an unknown name is an empty lookup', async (ctx) => {
  const memory = ctx.memory!;
  const updated = await memory.entity({ id: 'bob-smith', aliases: ['Robert'], attributes: { team: 'treasury' } }, { domain: 'email', opId: 'bob-update-1' });
  assert.equal(updated.domains, ['email']);
  assert.equal(updated.entity.aliases, ['Bob', 'bob@example.com', 'Robert']);
  assert.equal(updated.entity.attributes, { reportsPerQuarter: 4, team: 'treasury' });
  assert.is(updated.entity.name, 'Bob Smith', 'a field left out keeps its value');

  const seqBefore = (decodePayload((await ctx.nc!.request(shardSubject('email', 'lookup'), encodePayload({ v: 1, entity: 'Robert' }, 'msgpack'))).data, 'msgpack') as { entity: { updatedAt: string } }).entity.updatedAt;
  const again = await memory.entity({ id: 'bob-smith', aliases: ['Robert'], attributes: { team: 'treasury' } }, { domain: 'email', opId: 'bob-update-1' });
  assert.equal(again.entity, updated.entity);
  const seqAfter = (decodePayload((await ctx.nc!.request(shardSubject('email', 'lookup'), encodePayload({ v: 1, entity: 'Robert' }, 'msgpack'))).data, 'msgpack') as { entity: { updatedAt: string } }).entity.updatedAt;
  assert.is(seqAfter, seqBefore, 'the retry changed nothing');

  const calendar = await memory.lookup('Robert', { domain: 'calendar' });
  assert.equal(calendar, [], "calendar never heard the alias: the update named email only");
  assert.equal(await memory.lookup('nobody-at-all'), []);
});

t.run();
