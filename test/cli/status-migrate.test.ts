/**
 * `shardmind status` and `shardmind migrate` against real host processes: one nats-server, two Minis (email led by
 * mini-1 with mini-2 standing by; files led by mini-2 only). The commands run in-process with captured output.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { startNatsServer, waitForJetStream, type NatsServerProcess, runStatus, runMigrate, runApply } from '../../cli/index.ts';
import type { ClusterConfigInput } from '../../config/index.ts';
import { encodePayload, shardSubject } from '../../protocol/index.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';

interface Ctx {
  nats?: NatsServerProcess;
  hosts?: HostCluster;
  nc?: NatsConnection;
}
const t = suite<Ctx>('status and migrate commands');

function config(url: string): ClusterConfigInput {
  return {
    cluster: { name: 'cli' },
    nodes: [
      { name: 'mini-1', nats: [url] },
      { name: 'mini-2', nats: [url] },
    ],
    domains: [
      { name: 'email', description: 'mail', seeds: ['send an email'] },
      { name: 'files', description: 'documents', seeds: ['save the file'] },
    ],
    placement: { email: { leader: 'mini-1', standbys: ['mini-2'] }, files: { leader: 'mini-2' } },
    replication: { replicas: 1, leaseMs: 1500, heartbeatMs: 250 },
  };
}

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s) }, out, err };
}

t.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  ctx.nc = await connect({ servers: ctx.nats.url });
  await waitForJetStream(ctx.nc);
  ctx.hosts = await startHosts({ config: config(ctx.nats.url) });
});

t.after(async (ctx) => {
  await ctx.hosts?.stop();
  await ctx.nc?.close();
  await ctx.nats?.destroy();
});

t('status - one row per domain × node with role, state, applied seq, lag and epoch', async (ctx) => {
  const url = ctx.nats!.url;
  for (let i = 0; i < 5; i++) {
    await ctx.nc!.request(
      shardSubject('email', 'remember'),
      encodePayload({ v: 1, agent: 'cli-test', fact: { text: `note ${i}` } }, 'msgpack'),
      { timeout: 5_000 },
    );
  }
  const c = capture();
  assert.is(await runStatus(['--servers', url, '--nodes', 'mini-1,mini-2', '--json'], c.io), 0, c.err.join(''));
  const report = JSON.parse(c.out.join('')) as { rows: { domain: string; node: string; role: string; state: string; appliedSeq: number; lag: number; logFrom: number; epoch: number; staleMs?: number }[]; tails: Record<string, number> };
  const row = (d: string, n: string) => report.rows.find((r) => r.domain === d && r.node === n);
  assert.equal([row('email', 'mini-1')?.role, row('email', 'mini-1')?.state], ['leader', 'leading']);
  assert.equal([row('email', 'mini-2')?.role, row('email', 'mini-2')?.state], ['follower', 'following']);
  assert.equal([row('files', 'mini-2')?.role, row('files', 'mini-1')], ['leader', undefined]);
  assert.ok((report.tails['email'] ?? 0) >= 6, 'epoch marker + 5 writes');
  assert.is(row('email', 'mini-1')?.lag, 0);
  assert.is(row('email', 'mini-1')?.logFrom, 1, 'the log starts at 1 until it is compacted');
  assert.is(row('email', 'mini-1')?.staleMs, 0, 'a leader answers replica reads fresh');
  assert.ok((row('email', 'mini-1')?.epoch ?? 0) >= 1);

  const text = capture();
  assert.is(await runStatus(['--servers', url, '--nodes', 'mini-1,mini-2'], text.io), 0);
  const lines = text.out.join('').trim().split('\n');
  assert.match(lines[0]!, /^DOMAIN\s+NODE\s+ROLE\s+STATE\s+APPLIED\s+LAG\s+LOG FROM\s+EPOCH\s+LAST HEARTBEAT\s+STALE MS\s+LEVEL$/);
  assert.is(lines.length, 2 + 3, 'header, rule, three shard rows');

  const missing = capture();
  assert.is(await runStatus(['--servers', url, '--nodes', 'mini-1,mini-9', '--timeout', '300'], missing.io), 1);
  assert.match(missing.out.join(''), /mini-9\s+unreachable/);
});

t('status - under steady writes the leader shows lag 0', async (ctx) => {
  let writing = true;
  let written = 0;
  const writers = Array.from({ length: 4 }, async (_, w) => {
    for (let i = 0; writing; i++) {
      await ctx.nc!.request(
        shardSubject('email', 'remember'),
        encodePayload({ v: 1, agent: 'cli-test', fact: { text: `steady ${w} ${i}` } }, 'msgpack'),
        { timeout: 5_000 },
      );
      written++;
    }
  });
  const leaderLags: number[] = [];
  try {
    while (written < 20) await new Promise((r) => setTimeout(r, 10));
    for (let i = 0; i < 12; i++) {
      const c = capture();
      // With the config, as an operator runs it: the configured domains' tails are read before the hosts answer.
      assert.is(await runStatus(['--config', ctx.hosts!.configPath, '--json'], c.io), 0, c.err.join(''));
      const report = JSON.parse(c.out.join('')) as { rows: { domain: string; state: string; lag: number }[] };
      leaderLags.push(report.rows.find((r) => r.domain === 'email' && r.state === 'leading')?.lag ?? -1);
    }
  } finally {
    writing = false;
    await Promise.all(writers);
  }
  // Before the fix the leader showed its own writes in flight: 1 1 2 1 … or 4 4 4 … with four writers.
  assert.equal(leaderLags, leaderLags.map(() => 0), `leader lags while writing: ${leaderLags.join(' ')} (${written} writes)`);
});

t('migrate - email moves to mini-2 and back; the report carries the gap', async (ctx) => {
  const url = ctx.nats!.url;
  const there = capture();
  assert.is(
    await runMigrate(['email', '--to', 'mini-2', '--servers', url, '--nodes', 'mini-1,mini-2', '--json'], there.io),
    0,
    there.err.join('') + ctx.hosts!.stderr().slice(-5_000),
  );
  const report = JSON.parse(there.out.join('')) as { from: string; to: string; unchanged: boolean; epoch: number; gapCommandMs: number; gapProbeMs: number };
  assert.equal([report.from, report.to, report.unchanged], ['mini-1', 'mini-2', false]);
  assert.ok(report.gapCommandMs >= 0 && report.gapProbeMs >= 0);
  const lead = await ctx.hosts!.host('mini-2').shard('email');
  assert.equal([lead?.role, lead?.state], ['leader', 'leading']);

  const again = capture();
  assert.is(await runMigrate(['email', '--to', 'mini-2', '--servers', url, '--nodes', 'mini-1,mini-2'], again.io), 0);
  assert.match(again.out.join(''), 'already led by mini-2');

  const back = capture();
  assert.is(await runMigrate(['email', '--to', 'mini-1', '--servers', url, '--nodes', 'mini-1,mini-2'], back.io), 0, back.err.join(''));
  assert.match(back.out.join(''), 'mini-2 → mini-1');
  assert.match(back.out.join(''), /gap \(probe client, longest wait between answers\): \d+ ms/);

  const bad = capture();
  assert.is(await runMigrate(['email', '--to', 'mini-7', '--servers', url, '--nodes', 'mini-1,mini-2'], bad.io), 1);
  assert.match(bad.err.join(''), 'not a node');
});

t('apply - after a manual move, --dry-run plans the way back and apply carries it out', async (ctx) => {
  const url = ctx.nats!.url;
  const config = ctx.hosts!.configPath;
  const away = capture();
  assert.is(await runMigrate(['email', '--to', 'mini-2', '--config', config, '--no-probe'], away.io), 0, away.err.join(''));

  const plan = capture();
  assert.is(await runApply(['--config', config, '--dry-run', '--json'], plan.io), 0, plan.err.join(''));
  assert.equal(JSON.parse(plan.out.join('')).steps, [{ op: 'migrate', domain: 'email', from: 'mini-2', to: 'mini-1' }]);
  assert.is((await ctx.hosts!.host('mini-2').shard('email'))?.role, 'leader', 'a dry run changes nothing');

  const run = capture();
  assert.is(await runApply(['--config', config], run.io), 0, run.err.join(''));
  assert.match(run.out.join(''), 'migrate email mini-2 → mini-1: done');
  assert.is((await ctx.hosts!.host('mini-1').shard('email'))?.role, 'leader');

  const again = capture();
  assert.is(await runApply(['--config', config, '--servers', url], again.io), 0);
  assert.match(again.out.join(''), 'nothing to do');
});

t('a replica rebuilt from the log replays old hand-offs to itself without taking the lead', async (ctx) => {
  const before = await ctx.hosts!.host('mini-1').shard('email');
  assert.is(before?.role, 'leader', 'mini-1 leads after the tests above (whose log holds hand-offs to mini-2)');
  const mini2 = ctx.hosts!.host('mini-2');
  await mini2.stop();
  rmSync(join(ctx.hosts!.dataDir, 'mini-2', 'email'), { recursive: true, force: true });
  await mini2.start(30_000);
  const rebuilt = await mini2.shard('email');
  assert.equal([rebuilt?.role, rebuilt?.state], ['follower', 'following'], mini2.stderr().slice(-3_000));
  const settle = Date.now() + 500;
  while (Date.now() < settle) await new Promise((r) => setTimeout(r, 50));
  const after = await ctx.hosts!.host('mini-1').shard('email');
  assert.equal([after?.role, after?.epoch], ['leader', before?.epoch], 'the leader and its epoch are unchanged');
  assert.is((await mini2.shard('email'))?.appliedSeq, after?.appliedSeq, 'the rebuilt replica has the whole log');
});

t.run();
