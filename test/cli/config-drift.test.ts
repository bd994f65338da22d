/**
 * Config drift made visible: every host's status carries a digest of what its config says that all hosts must agree
 * on (`configDigest`), and `shardmind status` prints a warning naming the hosts whose digest differs. Three in-process
 * hosts on one real nats-server; the third was given a config whose `prefers` predicate is `many`, not `one`.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNatsServer, runStatus, configDriftWarning, type NatsServerProcess } from '../../cli/index.ts';
import { Host } from '../../actors/index.ts';
import { configDigest, resolveConfig, type ClusterConfigInput } from '../../config/index.ts';
import { openShardStore } from '../../shards/index.ts';

interface Ctx {
  server?: NatsServerProcess;
  dir?: string;
  hosts: Host[];
}

const t = suite<Ctx>('config drift', { hosts: [] });

function input(url: string, dir: string, prefers: 'one' | 'many'): ClusterConfigInput {
  return {
    cluster: { name: 'drift' },
    nodes: ['a', 'b', 'c'].map((name) => ({ name, nats: [url] })),
    domains: [
      { name: 'email', description: 'mail', seeds: ['send an email'], predicates: { prefers: { cardinality: prefers, halfLifeDays: 30 } } },
      { name: 'files', description: 'documents', seeds: ['save the file'] },
    ],
    placement: { email: { leader: 'a', standbys: ['b'] }, files: { leader: 'b' } },
    dataDir: dir,
    replication: { replicas: 1, leaseMs: 1500, heartbeatMs: 250 },
  };
}

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s) }, out, err };
}

t.before(async (ctx) => {
  ctx.server = await startNatsServer();
  ctx.dir = mkdtempSync(join(tmpdir(), 'sm-config-drift-'));
  for (const node of ['a', 'b', 'c']) {
    const config = resolveConfig(input(ctx.server.url, ctx.dir, node === 'c' ? 'many' : 'one'));
    const host = new Host({ config, node, openStore: openShardStore, log: () => undefined });
    ctx.hosts.push(host);
  }
  await Promise.all(ctx.hosts.map((h) => h.whenReady()));
});

t.after(async (ctx) => {
  for (const h of ctx.hosts) await h.drain();
  await ctx.server?.destroy();
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

t('digest - covers what hosts must agree on, in any order, and nothing else', () => {
  const base = resolveConfig(input('nats://127.0.0.1:4222', '/tmp/x', 'one'));
  const digest = configDigest(base);
  assert.match(digest, /^[0-9a-f]{12}$/);
  const reordered = resolveConfig({
    ...input('nats://10.0.0.9:4222', '/elsewhere', 'one'),
    domains: [...input('nats://127.0.0.1:4222', '', 'one').domains].reverse().map((d) => ({ ...d, description: 'reworded', seeds: ['other words'] })),
    limits: { maxPayloadBytes: 1 << 20 },
  });
  assert.is(configDigest(reordered), digest, 'domain order, descriptions, seeds, URLs, data dir and limits do not count');
  assert.is.not(configDigest(resolveConfig(input('nats://127.0.0.1:4222', '/tmp/x', 'many'))), digest, 'a cardinality counts');
  const halfLife = input('nats://127.0.0.1:4222', '/tmp/x', 'one');
  const longer = { ...halfLife, domains: halfLife.domains.map((d) => (d.name === 'files' ? { ...d, defaultPredicate: { cardinality: 'many' as const, halfLifeDays: 90 } } : d)) };
  assert.is.not(configDigest(resolveConfig(longer)), digest, 'a default half-life counts');
  const moved = { ...halfLife, placement: { email: { leader: 'b', standbys: ['a'] }, files: { leader: 'b' } } };
  assert.is.not(configDigest(resolveConfig(moved)), digest, 'placement counts');
});

t('status - warns naming the host whose config differs; no warning when the hosts agree', async (ctx) => {
  const url = ctx.server!.url;
  const agree = capture();
  assert.is(await runStatus(['--servers', url, '--nodes', 'a,b'], agree.io), 0, agree.err.join(''));
  assert.not.match(agree.out.join(''), /WARNING/);

  const drift = capture();
  assert.is(await runStatus(['--servers', url, '--nodes', 'a,b,c'], drift.io), 0, drift.err.join(''));
  const [ab, c] = [ctx.hosts[0]!.status().configDigest!, ctx.hosts[2]!.status().configDigest!];
  assert.is(ctx.hosts[1]!.status().configDigest, ab);
  assert.is.not(c, ab);
  const line = drift.out.join('').split('\n').find((l) => l.startsWith('WARNING'));
  assert.ok(line, drift.out.join(''));
  assert.match(line!, `c runs ${c}, the others (a, b) ${ab}`);

  const json = capture();
  assert.is(await runStatus(['--servers', url, '--nodes', 'a,b,c', '--json'], json.io), 0);
  const report = JSON.parse(json.out.join('')) as { configDrift?: string; nodes: { node: string; status?: { configDigest?: string } }[] };
  assert.match(report.configDrift ?? '', /^WARNING: config drift: c runs/);
  assert.is(report.nodes.find((n) => n.node === 'c')?.status?.configDigest, c);
});

t('warning - a tie names every group; hosts that report no digest are left out', () => {
  const ok = (node: string, configDigest?: string) =>
    ({ node, ok: true, ms: 1, status: { v: 1, node, shards: [], ...(configDigest ? { configDigest } : {}) } }) as const;
  assert.is(configDriftWarning([ok('a', 'x'), ok('b', 'x'), ok('old')]), undefined);
  const tie = configDriftWarning([ok('a', 'x'), ok('b', 'y'), { node: 'down', ok: false, error: 'no answer' }]);
  assert.match(tie ?? '', /config drift: a runs x; b runs y\./);
});

t.run();
