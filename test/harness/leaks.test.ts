/**
 * The runner's leak sweep (test/run.ts, test/harness/leaks.ts) on real processes: a fixture file that leaves two
 * sleeping children and a temp dir behind is reported, both children are dead and the dir gone afterwards, and
 * the leak fails the file; a fixture that cleans up after itself is reported clean.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runFile } from '../run.ts';
import { TestSandbox } from './leaks.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

function alive(pid: number): boolean {
  try {
    // A zombie has exited; only its parent's reaping is left.
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return false;
  }
}

test('leak sweep - a file that leaves two sleeping children and a dir is reported, cleaned and failed', async () => {
  const r = await runFile(join(FIXTURES, 'leaky-file.ts'), { echo: false, failOnLeak: true, timeoutMs: 60_000 });
  const line = r.output.split('\n').find((l) => l.startsWith('LEAKY '));
  assert.ok(line, `the fixture printed its pids:\n${r.output}`);
  const leaky = JSON.parse(line.slice('LEAKY '.length)) as { escaped: number; bare: number; dir: string };
  assert.is(r.passed, 1, r.output);

  const byPid = new Map(r.leaks.processes.map((p) => [p.pid, p]));
  assert.is(byPid.get(leaky.escaped)?.foundBy, 'marker', 'the child in its own session is found by the marker');
  assert.is(byPid.get(leaky.bare)?.foundBy, 'group', 'the child with an empty environment is found by the group');
  assert.match(byPid.get(leaky.escaped)!.command, /sleep 300/);
  assert.is(r.leaks.processes.length, 2, JSON.stringify(r.leaks.processes));
  assert.not.ok(alive(leaky.escaped), 'the escaped sleeper was killed');
  assert.not.ok(alive(leaky.bare), 'the bare sleeper was killed');

  assert.equal(r.leaks.paths.map((p) => p.path), [leaky.dir]);
  assert.is(r.leaks.paths[0]!.files, 1);
  assert.not.ok(existsSync(leaky.dir), 'the leaked dir was removed');
  assert.equal(r.leaks.uncleaned, []);
  assert.is(r.failed, 1, 'a leak fails the file');
});

test('leak sweep - with failOnLeak off a leak is reported but the file passes', async () => {
  const r = await runFile(join(FIXTURES, 'leaky-file.ts'), { echo: false, failOnLeak: false, timeoutMs: 60_000 });
  assert.is(r.leaks.processes.length, 2);
  assert.is(r.leaks.paths.length, 1);
  assert.is(r.failed, 0);
});

test('leak sweep - a file that never exits is killed at its timeout, and what it started is still found and killed', async () => {
  const r = await runFile(join(FIXTURES, 'leaky-file.ts'), { echo: false, failOnLeak: true, timeoutMs: 10_000, env: { LEAKY_HANG: '1' } });
  const line = r.output.split('\n').find((l) => l.startsWith('LEAKY '));
  assert.ok(line, r.output);
  const leaky = JSON.parse(line.slice('LEAKY '.length)) as { escaped: number; bare: number; dir: string };
  assert.equal(r.leaks.processes.map((p) => p.pid).sort(), [leaky.escaped, leaky.bare].sort());
  assert.not.ok(alive(leaky.escaped));
  assert.not.ok(alive(leaky.bare));
  assert.not.ok(existsSync(leaky.dir));
  assert.is(r.failed, 1, 'a file that never exits has no summary: one failure');
});

test('leak sweep - a file that awaits its child and removes its dir is reported clean', async () => {
  const r = await runFile(join(FIXTURES, 'tidy-file.ts'), { echo: false, failOnLeak: true, timeoutMs: 60_000 });
  assert.is(r.passed, 1, r.output);
  assert.equal(r.leaks, { processes: [], mounts: [], paths: [], uncleaned: [] });
  assert.is(r.failed, 0);
});

test('leak sweep - the sandbox of a runner that died mid-file is found by a later runner and swept', async () => {
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(FIXTURES, 'abandoning-runner.ts')], { encoding: 'utf8' });
  const line = out.split('\n').find((l) => l.startsWith('ABANDONED '));
  assert.ok(line, out);
  const left = JSON.parse(line.slice('ABANDONED '.length)) as { root: string; pid: number };
  try {
    assert.ok(alive(left.pid), 'the abandoned sleeper is running');
    const found = TestSandbox.abandoned().find((s) => s.root === left.root);
    assert.ok(found, `the dead runner's sandbox ${left.root} is found`);
    const leaks = await found.sweep();
    assert.equal(leaks.processes.map((p) => p.pid), [left.pid]);
    assert.is(leaks.processes[0]!.foundBy, 'marker');
    assert.equal(leaks.paths.map((p) => p.path), [join(left.root, 'half-written.txt')]);
    assert.not.ok(alive(left.pid), 'the sleeper was killed');
    assert.not.ok(existsSync(left.root), 'the root was removed');
    assert.not.ok(TestSandbox.abandoned().some((s) => s.root === left.root));
  } finally {
    if (alive(left.pid)) process.kill(left.pid, 'SIGKILL');
  }
});

test.run();
