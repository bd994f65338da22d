/**
 * The operator commands against a real `shardmind up` (one node, named `local`) with the shipped config's node names
 * (mini-1, mini-2, mini-3), as a new user runs them when `--nodes local` is left out (walkthrough-session13 F2, F3,
 * F10, F11): status says no node of those names answered and how to ask `local`, instead of blaming the config;
 * migrate and compact fail within seconds naming the nodes asked, with the same hint; apply says it has nothing to
 * compare instead of "nothing to do", and explains why it takes no --nodes; a compaction that purges nothing says why.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, runApply, runCompact, runMigrate, runRemember, runStatus } from '../../cli/index.ts';

const ROOT = join(import.meta.dirname, '..', '..');
/** The shipped config: nodes mini-1..3, domains calendar, email, files. */
const SHIPPED = join(ROOT, 'cluster.config.ts');

interface Ctx {
  up?: ChildProcess;
  output: string;
  exited?: Promise<number | null>;
  dir?: string;
  url?: string;
}

const t = suite<Ctx>('commands against shardmind up without --nodes local', { output: '' });

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s) }, out: () => out.join(''), err: () => err.join('') };
}

t.before(async (ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), 'sm-up-nodes-'));
  const port = await freePort();
  ctx.url = `nats://127.0.0.1:${port}`;
  const up = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'cli', 'main.ts'), 'up', '--port', String(port), '--data', ctx.dir], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  ctx.up = up;
  up.stdout!.on('data', (b: Buffer) => (ctx.output += b.toString()));
  up.stderr!.on('data', (b: Buffer) => (ctx.output += b.toString()));
  ctx.exited = new Promise((resolve) => up.once('exit', (code) => resolve(code)));
  let exited = false;
  void ctx.exited.then(() => (exited = true));
  const deadline = Date.now() + 60_000;
  while (!/shardmind is up/.test(ctx.output)) {
    if (exited) throw new Error(`up exited before its banner:\n${ctx.output}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for up's banner:\n${ctx.output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
});

t.after(async (ctx) => {
  if (ctx.up && ctx.up.exitCode === null) {
    ctx.up.kill('SIGINT');
    await ctx.exited;
  }
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

t('status - no configured node answers: one line naming them and --nodes local, no "Adding a domain" advice', async (ctx) => {
  const text = capture();
  assert.is(await runStatus(['--config', SHIPPED, '--servers', ctx.url!, '--timeout', '500'], text.io), 1);
  const said = text.out() + text.err();
  assert.match(said, /mini-1\s+unreachable/);
  assert.match(said, /WARNING: no node of mini-1, mini-2, mini-3 answered, though the NATS servers did: no host of those names runs there; against `shardmind up` \(its one node is named local\) pass --nodes local\./);
  assert.not.match(said, /Adding a domain/);
  assert.not.match(said, /not running/, 'nobody answered: nothing is known of which domains run');

  const json = capture();
  assert.is(await runStatus(['--config', SHIPPED, '--servers', ctx.url!, '--json'], json.io), 1);
  const report = JSON.parse(json.out()) as { noNodeAnswered?: string; notRunning?: string[] };
  assert.match(report.noNodeAnswered ?? '', /^no node of mini-1, mini-2, mini-3 answered.*pass --nodes local$/);
  assert.is(report.notRunning, undefined);

  const right = capture();
  assert.is(await runStatus(['--config', SHIPPED, '--servers', ctx.url!, '--nodes', 'local'], right.io), 0, right.err());
  assert.match(right.out(), /email\s+local\s+leader\s+leading/);
  assert.not.match(right.out() + right.err(), /no node of/);
});

t('migrate and compact - no configured node answers: they fail within seconds naming the nodes asked, with --nodes local', async (ctx) => {
  const started = Date.now();
  const migrate = capture();
  assert.is(await runMigrate(['email', '--to', 'mini-1', '--config', SHIPPED, '--servers', ctx.url!, '--no-probe'], migrate.io), 1);
  assert.match(migrate.err(), /^migrate failed: UNAVAILABLE: no node leads email: no node of mini-1, mini-2, mini-3 answered, .*pass --nodes local\n$/);
  // It waited 12 s for a leader that no host of those names could ever be before (walkthrough-session13 F3).
  assert.ok(Date.now() - started < 9_000, `migrate took ${Date.now() - started} ms`);

  const compact = capture();
  assert.is(await runCompact(['email', '--config', SHIPPED, '--servers', ctx.url!], compact.io), 1);
  assert.match(compact.err(), /^compact failed: UNAVAILABLE: no node leads email: no node of mini-1, mini-2, mini-3 answered, .*pass --nodes local\n$/);

  const right = capture();
  assert.is(await runMigrate(['email', '--to', 'local', '--servers', ctx.url!, '--nodes', 'local'], right.io), 0, right.err());
  assert.match(right.out(), 'email is already led by local: nothing to do');
});

t('compact - a log shorter than the retained tail: the line says why nothing was purged', async (ctx) => {
  const stored = capture();
  assert.is(await runRemember(['The user keeps invoices in the finance folder', '--domain', 'email', '--servers', ctx.url!], stored.io), 0, stored.err());
  const c = capture();
  assert.is(await runCompact(['email', '--servers', ctx.url!, '--nodes', 'local'], c.io), 0, c.err());
  assert.match(
    c.out(),
    /^email: snapshot \S+ at seq (\d+) \(\d+ bytes\) by local; the log now starts at seq 1 \(0 entries purged: a compaction keeps the 1000 entries up to the snapshot \(compaction\.retainEntries\), and the log holds \1 entries \(seq 1–\1\): none lies below those yet\) in \d+ ms\n$/,
  );
  const json = capture();
  assert.is(await runCompact(['email', '--servers', ctx.url!, '--nodes', 'local', '--json'], json.io), 0, json.err());
  const r = JSON.parse(json.out()) as { purged: number; retainEntries?: number; lastSeq?: number; seq: number };
  assert.equal([r.purged, r.retainEntries, r.lastSeq], [0, 1000, r.seq]);
});

t('apply - no configured node answers: it says so instead of "nothing to do"; --nodes is refused with the reason', async (ctx) => {
  const silent = capture();
  assert.is(await runApply(['--config', SHIPPED, '--servers', ctx.url!, '--dry-run'], silent.io), 1);
  assert.match(silent.err(), /apply failed: UNAVAILABLE: no node of mini-1, mini-2, mini-3 answered, though the NATS servers did: no host of those names runs there; nothing to compare the config's placement with\. `shardmind up` runs one node, local, leading every domain: it has no placement to apply/);
  assert.not.match(silent.out(), /nothing to do/);

  const nodes = capture();
  assert.is(await runApply(['--config', SHIPPED, '--servers', ctx.url!, '--nodes', 'local', '--dry-run'], nodes.io), 2);
  assert.match(nodes.err(), /^shardmind apply: --nodes: apply asks the config's nodes, because their placement is what it applies/);
  assert.not.match(nodes.err(), /Unknown option/);
});

t.run();
