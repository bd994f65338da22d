/**
 * Adding a domain to a running cluster (walkthrough-session12-ops F1): before the hosts restart with the new file,
 * `status` lists the domain nobody runs and `apply` says what it needs (it printed "nothing to do"); after a rolling
 * restart with the file, the domain runs, every router knows it and classifies into it, and apply has nothing left.
 * Real nats-server, two real `shardmind host` processes.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { startNatsServer, runStatus, runApply, type NatsServerProcess } from '../../cli/index.ts';
import type { ClusterConfigInput } from '../../config/index.ts';
import { decodePayload, encodePayload, memSubject } from '../../protocol/index.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';
import { routerReady } from '../harness/router-ready.ts';

interface Ctx {
  nats?: NatsServerProcess;
  hosts?: HostCluster;
  nc?: NatsConnection;
  /** The edited config: the running one plus `health`. */
  withHealth?: string;
}

const t = suite<Ctx>('adding a domain');

function config(url: string): ClusterConfigInput {
  return {
    cluster: { name: 'grow' },
    nodes: [
      { name: 'mini-1', nats: [url] },
      { name: 'mini-2', nats: [url] },
    ],
    domains: [
      { name: 'email', description: 'Email messages, replies, inbox and attachments.', seeds: ['send an email to Bob', 'reply to the message'] },
      { name: 'files', description: 'Documents, folders and backups.', seeds: ['save the file to the folder', 'back up the documents'] },
    ],
    placement: { email: { leader: 'mini-1', standbys: ['mini-2'] }, files: { leader: 'mini-2' } },
    replication: { replicas: 1, leaseMs: 1500, heartbeatMs: 250 },
  };
}

function withHealth(input: ClusterConfigInput): ClusterConfigInput {
  return {
    ...input,
    domains: [
      ...input.domains,
      {
        name: 'health',
        description: 'Health, doctors, medication, exercise and sleep.',
        seeds: ['the user takes a vitamin pill every morning', 'book a doctor visit for the flu', 'the user runs three times a week', 'the user sleeps eight hours'],
      },
    ],
    placement: { ...input.placement, health: { leader: 'mini-1', standbys: ['mini-2'] } },
  };
}

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s) }, out, err, text: () => out.join('') + err.join('') };
}

async function ask(nc: NatsConnection, op: string, body: unknown): Promise<Record<string, any>> {
  const msg = await nc.request(memSubject(op), encodePayload(body, 'msgpack'), { timeout: 8_000 });
  return decodePayload(msg.data, 'msgpack') as Record<string, any>;
}

t.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  ctx.hosts = await startHosts({ config: config(ctx.nats.url) });
  ctx.nc = await connect({ servers: ctx.nats.url });
  await routerReady(ctx.nc);
  ctx.withHealth = join(ctx.hosts.dataDir, '..', 'with-health.config.mjs');
  writeFileSync(ctx.withHealth, `export default ${JSON.stringify({ ...withHealth(config(ctx.nats.url)), dataDir: ctx.hosts.dataDir }, null, 2)};\n`);
});

t.after(async (ctx) => {
  await ctx.nc?.close();
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

t('before the hosts restart: status lists the new domain as not running, apply says to restart, not "nothing to do"', async (ctx) => {
  const status = capture();
  assert.is(await runStatus(['--config', ctx.withHealth!], status.io), 1, status.text());
  const row = status.out.join('').split('\n').find((l) => l.startsWith('health'));
  assert.ok(row, status.text());
  assert.match(row!, /health\s+-\s+none\s+not running/);
  assert.match(status.text(), 'WARNING: health is in the config but no host that answered runs it (placed on mini-1, mini-2)');
  const json = capture();
  assert.is(await runStatus(['--config', ctx.withHealth!, '--json'], json.io), 1);
  assert.equal(JSON.parse(json.out.join('')).notRunning, ['health']);

  const plan = capture();
  assert.is(await runApply(['--config', ctx.withHealth!, '--dry-run'], plan.io), 0, plan.text());
  assert.not.match(plan.text(), 'nothing to do');
  assert.match(plan.text(), /restart \(by hand\)\s+health\s+every host \(placed: mini-1, mini-2\)/);
  assert.match(plan.text(), 'mini-1, mini-2 run another config than this file');
  const planJson = capture();
  assert.is(await runApply(['--config', ctx.withHealth!, '--dry-run', '--json'], planJson.io), 0);
  assert.equal(JSON.parse(planJson.out.join('')).steps, [{ op: 'restart', domain: 'health', nodes: ['mini-1', 'mini-2'] }]);
  const run = capture();
  assert.is(await runApply(['--config', ctx.withHealth!], run.io), 1, 'the cluster does not match until the hosts restart');
  assert.match(run.text(), 'left to you');

  // The routers know only the domains they started with.
  const named = await ask(ctx.nc!, 'remember', { v: 1, agent: 'a', domain: 'health', fact: { text: 'the user takes a vitamin pill at 8' } });
  assert.is(named['error']?.code, 'UNKNOWN_DOMAIN', JSON.stringify(named));
});

t('after a rolling restart with the file: the domain runs, routers classify into it, apply puts the leaders back', async (ctx) => {
  const hosts = ctx.hosts!;
  // The recipe of docs/operations.md: the new file on every Mini, then one host at a time, the new domain's leader
  // first (so that it claims the new shard itself rather than a standby after a lease).
  writeFileSync(hosts.configPath, `export default ${JSON.stringify({ ...withHealth(config(ctx.nats!.url)), dataDir: hosts.dataDir }, null, 2)};\n`);
  await hosts.host('mini-1').restart();
  await hosts.host('mini-2').restart();
  await routerReady(ctx.nc!);

  const status = capture();
  assert.is(await runStatus(['--config', ctx.withHealth!], status.io), 0, status.text());
  assert.match(status.out.join(''), /health\s+mini-1\s+leader\s+leading/);
  assert.match(status.out.join(''), /health\s+mini-2\s+follower/);
  assert.not.match(status.text(), 'not running');

  // Every router has the new config: any of them classifies into the domain, and a named write is taken.
  for (let i = 0; i < 4; i++) {
    const reply = await ask(ctx.nc!, 'remember', { v: 1, agent: 'a', fact: { text: 'the user takes the blood pressure pill every morning at 8' } });
    assert.is(reply['domain'], 'health', JSON.stringify(reply));
  }
  const named = await ask(ctx.nc!, 'remember', { v: 1, agent: 'a', domain: 'health', fact: { text: 'the user sleeps seven hours' } });
  assert.is(named['domain'], 'health', JSON.stringify(named));

  // The restarts handed domains to standbys: apply moves them back, and then nothing is left.
  const apply = capture();
  assert.is(await runApply(['--config', ctx.withHealth!], apply.io), 0, apply.text());
  assert.not.match(apply.text(), 'restart');
  const again = capture();
  assert.is(await runApply(['--config', ctx.withHealth!, '--dry-run'], again.io), 0, again.text());
  assert.match(again.text(), 'nothing to do');
});

t.run();
