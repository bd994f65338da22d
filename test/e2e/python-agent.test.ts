/**
 * The shipped Python client, `docs/examples/python/shardmind_agent.py` (standard library only, raw NATS, JSON), run
 * with `python3` against `shardmind up` as the README starts it: it remembers a fact, recalls it, and follows a task
 * that starts in email and is re-routed to calendar. A Python user copies this file; if it stops working, this fails.
 * python3 must be installed (`.ci/run` installs it): without it this test fails, saying so, rather than skip.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../cli/index.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const SCRIPT = join(ROOT, 'docs', 'examples', 'python', 'shardmind_agent.py');

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
  const python = spawnSync('python3', ['--version'], { encoding: 'utf8' });
  assert.ok(
    python.error === undefined && python.status === 0,
    `python3 is not installed (${python.error?.message ?? python.stderr}): this test runs the shipped Python client; install python3 (.ci/run does, with apt-get)`,
  );

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

test.run();
