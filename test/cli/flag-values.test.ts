/**
 * Numeric and duration flags are read strictly, by one reader (`cli/args.ts`), in every command: an empty value,
 * a word, a negative, a fraction where a whole number is needed or an unknown unit is one coded line naming the flag
 * and what it got, exit 2, and nothing is sent. Before, `Number('')` made `prune --inactive-days=` (a script's unset
 * `$DAYS`) "forget every closed fact" on every replica, and `migrate --timeout 5s` a NaN deadline that never passed
 * (review session 11, findings 0 and 3). Real processes: one nats-server, the hosts of a two-Mini config of which only
 * mini-1 runs (so files, led by mini-2, has no leader), and the CLI spawned as a person runs it.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { connect as natsConnect, type NatsConnection } from 'nats';
import { runCompact, runMigrate, runPrune, runRecall, runRemember, runStatus, startNatsServer, streamTails, type NatsServerProcess } from '../../cli/index.ts';
import { connect, type ShardmindClient } from '../../client/index.ts';
import type { ClusterConfigInput } from '../../config/index.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';

const BIN = join(import.meta.dirname, '..', '..', 'cli', 'bin.mjs');

interface Ctx {
  nats?: NatsServerProcess;
  hosts?: HostCluster;
  nc?: NatsConnection;
  memory?: ShardmindClient;
}
const t = suite<Ctx>('strict flag values');

function config(url: string): ClusterConfigInput {
  return {
    cluster: { name: 'flags' },
    nodes: [
      { name: 'mini-1', nats: [url] },
      { name: 'mini-2', nats: [url] },
    ],
    domains: [
      { name: 'email', description: 'mail', seeds: ['send an email'], predicates: { prefers: { cardinality: 'one', halfLifeDays: 30 } } },
      { name: 'files', description: 'documents', seeds: ['save the file'] },
    ],
    placement: { email: { leader: 'mini-1' }, files: { leader: 'mini-2' } },
    replication: { replicas: 1 },
  };
}

function shardmind(args: readonly string[], timeoutMs = 60_000) {
  const started = Date.now();
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, signal: r.signal, out: r.stdout, err: r.stderr, ms: Date.now() - started };
}

function capture() {
  let out = '';
  let err = '';
  return { io: { out: (s: string) => void (out += s), err: (s: string) => void (err += s) }, out: () => out, err: () => err };
}

async function emailTail(nc: NatsConnection): Promise<number> {
  const jsm = await nc.jetstreamManager({ checkAPI: false });
  return (await streamTails(jsm, ['email'])).get('email') ?? 0;
}

async function historyTexts(memory: ShardmindClient): Promise<string[]> {
  return (await memory.history('user', 'prefers', { domain: 'email' })).map((f) => f.text);
}

t.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  ctx.hosts = await startHosts({ config: config(ctx.nats.url), nodes: ['mini-1'] });
  ctx.nc = await natsConnect({ servers: ctx.nats.url });
  ctx.memory = await connect({ servers: ctx.nats.url, agent: 'flags', node: 'mini-1', direct: true });
  await ctx.memory.remember({ text: 'The user prefers links', subject: 'user', predicate: 'prefers', object: 'links' }, { domain: 'email' });
  await ctx.memory.remember({ text: 'The user prefers PDF attachments', subject: 'user', predicate: 'prefers', object: 'pdf' }, { domain: 'email' });
});

t.after(async (ctx) => {
  await ctx.memory?.close();
  await ctx.nc?.close();
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

t('prune --inactive-days= (empty, a script\'s unset $DAYS) is refused in one coded line, exit 2; the closed fact stays', async (ctx) => {
  const before = await historyTexts(ctx.memory!);
  assert.equal(before, ['The user prefers links', 'The user prefers PDF attachments'], 'a closed fact and the current one');
  const tail = await emailTail(ctx.nc!);
  const r = shardmind(['prune', 'email', '--inactive-days=', '--config', ctx.hosts!.configPath]);
  assert.is(r.code, 2, r.err);
  const lines = r.err.trim().split('\n');
  assert.is(lines.length, 1, r.err);
  assert.match(lines[0]!, /^shardmind prune: BAD_REQUEST: --inactive-days: "" must be a number of days ≥ 0 .*\(an empty value\)$/);
  assert.is(r.out, '');
  assert.equal(await historyTexts(ctx.memory!), before, 'nothing was forgotten');
  assert.is(await emailTail(ctx.nc!), tail, 'no prune entry reached the log');
});

t('every numeric and duration flag refuses what is not its kind of value, before anything is sent', async (ctx) => {
  const cfg = ['--config', ctx.hosts!.configPath];
  const servers = ['--servers', ctx.nats!.url];
  const tail = await emailTail(ctx.nc!);
  const cases: [string, (argv: readonly string[], io: ReturnType<typeof capture>['io']) => Promise<number>, string[], RegExp][] = [
    ['prune', runPrune, ['email', '--inactive-days', ' ', ...cfg], /--inactive-days: " " must be .*\(an empty value\)/],
    ['prune', runPrune, ['email', '--inactive-days', '0x0', ...cfg], /--inactive-days: "0x0" must be .*\(not a number\)/],
    ['prune', runPrune, ['email', '--inactive-days', '1e3', ...cfg], /--inactive-days: "1e3" must be .*\(not a number\)/],
    ['prune', runPrune, ['email', '--inactive-days', 'thirty', ...cfg], /--inactive-days: "thirty" .*\(not a number\)/],
    ['prune', runPrune, ['email', '--inactive-days=-1', ...cfg], /--inactive-days: "-1" must be a number of days ≥ 0 .*\(out of range\)/],
    ['prune', runPrune, ['email', '--decayed-below=', ...cfg], /--decayed-below: "" must be a confidence in \(0, 1\) \(an empty value\)/],
    ['compact', runCompact, ['email', '--timeout=', ...cfg], /--timeout: "" must be a duration .*\(an empty value\)/],
    ['compact', runCompact, ['email', '--timeout', '5sec', ...cfg], /--timeout: "5sec" .*\(unknown unit "sec": use ms, s, m or h\)/],
    ['compact', runCompact, ['email', '--timeout=-5s', ...cfg], /--timeout: "-5s" .*\(negative\)/],
    ['compact', runCompact, ['email', '--timeout', '0', ...cfg], /--timeout: "0" .*\(out of range\)/],
    ['migrate', runMigrate, ['email', '--to', 'mini-2', '--timeout', 'soon', ...cfg], /--timeout: "soon" .*\(not a duration\)/],
    ['migrate', runMigrate, ['email', '--to', 'mini-2', '--max-lag', 'abc', ...cfg], /--max-lag: "abc" must be an integer in 0\.\.\d+ \(not a number\)/],
    ['migrate', runMigrate, ['email', '--to', 'mini-2', '--max-lag', '1.5', ...cfg], /--max-lag: "1.5" .*\(not a whole number\)/],
    ['migrate', runMigrate, ['email', '--to', 'mini-2', '--max-lag=', ...cfg], /--max-lag: "" .*\(an empty value\)/],
    ['status', runStatus, ['--timeout=', ...cfg], /--timeout: "" must be a duration .*\(an empty value\)/],
    ['status', runStatus, ['--timeout', '2 s', ...cfg], /--timeout: "2 s" .*\(not a duration\)/],
    ['remember', runRemember, ['x', '--confidence=', ...servers], /--confidence: "" must be a number in \(0, 1\] \(an empty value\)/],
    ['recall', runRecall, ['x', '--max-stale-ms=', ...servers], /--max-stale-ms: "" must be an integer in 0\.\.86400000 \(an empty value\)/],
    ['recall', runRecall, ['x', '--limit', '2.5', ...servers], /--limit: "2.5" .*\(not a whole number\)/],
  ];
  for (const [command, run, argv, why] of cases) {
    const c = capture();
    assert.is(await run(argv, c.io), 2, `${command} ${argv.join(' ')}: ${c.err()}`);
    const lines = c.err().trim().split('\n');
    assert.is(lines.length, 1, `one line: ${c.err()}`);
    assert.match(lines[0]!, new RegExp(`^shardmind ${command}: BAD_REQUEST: `), lines[0]);
    assert.match(lines[0]!, why);
    assert.is(c.out(), '', `${command} printed nothing else`);
  }
  assert.is(await emailTail(ctx.nc!), tail, 'no refused command reached the log');
  assert.is((await ctx.memory!.history('user', 'prefers', { domain: 'email' })).length, 2);
});

t('migrate --timeout 5s is five seconds (it was a NaN deadline that never passed); an unknown domain is UNKNOWN_DOMAIN at once', async (ctx) => {
  // files is led by mini-2, which does not run: no leader appears, so the command must give up when its budget ends.
  const slow = shardmind(['migrate', 'files', '--to', 'mini-1', '--timeout', '2s', '--no-probe', '--config', ctx.hosts!.configPath], 40_000);
  assert.is(slow.signal, null, `the command gave up on its own (${slow.ms} ms): ${slow.err}`);
  assert.is(slow.code, 1, slow.err);
  assert.match(slow.err, /^migrate failed: UNAVAILABLE: no node leads files \(asked mini-1, mini-2; mini-2 did not answer\); try again once it has a leader/);
  assert.ok(slow.ms < 20_000, `gave up after ${slow.ms} ms (budget 2 s plus process start)`);

  const unknown = shardmind(['migrate', 'nosuch', '--to', 'mini-1', '--timeout', '5s', '--config', ctx.hosts!.configPath], 40_000);
  assert.is(unknown.code, 1, unknown.err);
  assert.match(unknown.err, /^migrate failed: UNKNOWN_DOMAIN: domain "nosuch" is not in the cluster config \(email, files\)/);

  const ok = capture();
  assert.is(await runMigrate(['email', '--to', 'mini-1', '--timeout', '500ms', '--config', ctx.hosts!.configPath], ok.io), 0, ok.err());
  assert.match(ok.out(), /email is already led by mini-1: nothing to do/);

  const status = capture();
  assert.is(await runStatus(['--timeout', '2s', '--json', '--config', ctx.hosts!.configPath], status.io), 1, 'mini-2 does not run');
  const report = JSON.parse(status.out()) as { nodes: { node: string; ok: boolean }[] };
  assert.equal(report.nodes.map((n) => [n.node, n.ok]), [['mini-1', true], ['mini-2', false]]);
});

t.run();
