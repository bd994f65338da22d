/**
 * The shipped Python client, `docs/examples/python/shardmind_agent.py` (standard library only, raw NATS, JSON), run
 * with `python3` against `shardmind up` as the README starts it: it remembers a fact, recalls it, and follows a task
 * that starts in email and is re-routed to calendar; and, as the `agent` login of `nats-config --auth`, it is refused
 * a wrong password and fails a forbidden subject at once as FORBIDDEN. A Python user copies this file; if it stops
 * working, this fails.
 * python3 must be installed (`.ci/run` installs it): without it this test fails, saying so, rather than skip.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startNatsServer } from '../../cli/index.ts';
import { agentPasswordEnv, authorizationBlock, PASSWORD_ENV } from '../../cli/nats-auth.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const SCRIPT = join(ROOT, 'docs', 'examples', 'python', 'shardmind_agent.py');

function requirePython(): void {
  const python = spawnSync('python3', ['--version'], { encoding: 'utf8' });
  assert.ok(
    python.error === undefined && python.status === 0,
    `python3 is not installed (${python.error?.message ?? python.stderr}): this test runs the shipped Python client; install python3 (.ci/run does, with apt-get)`,
  );
}

function run(command: string, args: readonly string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('docs/examples/python/shardmind_agent.py - remembers, recalls it, and a task re-routes from email to calendar', async () => {
  requirePython();
  const dir = mkdtempSync(join(tmpdir(), 'sm-python-'));
  const port = await freePort();
  const up: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'cli', 'main.ts'), 'up', '--port', String(port), '--data', dir], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let upOutput = '';
  up.stdout!.on('data', (b: Buffer) => (upOutput += b.toString()));
  up.stderr!.on('data', (b: Buffer) => (upOutput += b.toString()));
  const exited = new Promise<number | null>((resolve) => up.once('exit', (code) => resolve(code)));
  try {
    const deadline = Date.now() + 60_000;
    while (!/shardmind is up/.test(upOutput)) {
      if (up.exitCode !== null) throw new Error(`shardmind up exited:\n${upOutput}`);
      if (Date.now() > deadline) throw new Error(`shardmind up did not come up within 60 s:\n${upOutput}`);
      await new Promise((r) => setTimeout(r, 50));
    }

    const agent = await run('python3', [SCRIPT, '127.0.0.1', String(port)], 60_000);
    const where = `exit ${agent.code}\nstdout:\n${agent.stdout}\nstderr:\n${agent.stderr}`;
    assert.is(agent.code, 0, where);
    const line = (prefix: string): string => {
      const found = agent.stdout.split('\n').find((l) => l.startsWith(prefix));
      assert.ok(found !== undefined, `no "${prefix}" line: ${where}`);
      return found.slice(prefix.length).trim();
    };
    const wrote = JSON.parse(line('remember:')) as { domain: string; seq: number; factId: string; status: string };
    assert.is(wrote.domain, 'calendar', where);
    assert.is(wrote.status, 'created', where);
    assert.match(wrote.factId, /^calendar:[0-9a-z]{10}:0$/);
    const recalled = JSON.parse(line('recall:')) as string[];
    assert.ok(recalled.includes('The user never takes meetings before 10am'), where);
    assert.match(line('task:'), /^t-\S+ began in email$/, where);
    const rerouted = line('task rerouted:');
    const moved = JSON.parse(rerouted.slice(0, rerouted.indexOf(' context:'))) as { from: string; to: string } | null;
    assert.equal(moved, { from: 'email', to: 'calendar' }, where);
    assert.ok((JSON.parse(rerouted.slice(rerouted.indexOf(' context:') + 9)) as string[]).includes('The user never takes meetings before 10am'), where);
  } finally {
    // SIGINT, as Ctrl-C: `up` drains and stops the nats-server it started.
    if (up.exitCode === null && up.signalCode === null) {
      up.kill('SIGINT');
      const timer = setTimeout(() => up.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

/** What the client does as a login of `nats-config --auth` (argv[4]): a snippet importing the shipped file. */
const LOGGED_IN = `
import sys, time
sys.path.insert(0, sys.argv[1])
import shardmind_agent as s
try:
    s.Nats("127.0.0.1", int(sys.argv[2]), sys.argv[4], "wrong-password")
except ConnectionError as e:
    print("wrong password:", e)
nc = s.Nats("127.0.0.1", int(sys.argv[2]), sys.argv[4], sys.argv[3])
started = time.monotonic()
try:
    nc.request("sm.ctl.mini-1.ping", b'{"v":1}', s.JSON_HEADERS, 5.0)
except s.SmError as e:
    print("ping:", e.code, e.retryable, "fast" if time.monotonic() - started < 2.5 else "slow")
try:
    nc.request("sm.mem.recall", b'{"v":1,"query":"x"}', s.JSON_HEADERS, 5.0)
except s.SmError as e:
    print("recall:", e.code)
`;

test('the Python client as the agent login and as its own (--agents) - a wrong password is refused, a forbidden subject fails at once as FORBIDDEN', async () => {
  requirePython();
  const password = `agent${Math.random().toString(36).slice(2)}xyz`;
  const names = [...Object.values(PASSWORD_ENV), agentPasswordEnv('py-agent')];
  const before = names.map((name) => process.env[name]);
  for (const name of names) process.env[name] = `${name.toLowerCase().replace(/[^a-z]/g, '')}${password}`;
  const logins = { agent: process.env[PASSWORD_ENV.agent]!, 'py-agent': process.env[agentPasswordEnv('py-agent')]! };
  // nats-server reads the passwords from its environment, which it gets from this process's.
  const nats = await startNatsServer({ authorization: authorizationBlock(['py-agent']) }).finally(() => {
    names.forEach((name, i) => (before[i] === undefined ? delete process.env[name] : (process.env[name] = before[i])));
  });
  try {
    const port = new URL(nats.url).port;
    for (const [user, pass] of Object.entries(logins)) {
      const out = await run('python3', ['-c', LOGGED_IN, join(ROOT, 'docs', 'examples', 'python'), port, pass, user], 30_000);
      const where = `${user}: exit ${out.code}\nstdout:\n${out.stdout}\nstderr:\n${out.stderr}`;
      assert.is(out.code, 0, where);
      assert.match(out.stdout, /wrong password: -ERR 'Authorization Violation'/, where);
      // Refused by nats-server before anything of shardmind saw it: no reply ever comes, the client reads the -ERR.
      assert.match(out.stdout, /ping: FORBIDDEN False fast/, where);
      assert.match(out.stderr, /Permissions Violation for Publish to "sm\.ctl\.mini-1\.ping"/, where);
      // Allowed, and nobody serves it here: no responders, which the login does not turn into a refusal. (The client's
      // inbox is _INBOX.<user>.…: under any other, the own login's reply subscription is refused and nothing comes.)
      assert.match(out.stdout, /recall: NO_RESPONDERS/, where);
    }
  } finally {
    await nats.destroy();
  }
});

test.run();
