/**
 * `shardmind bench` and the demo killed with SIGKILL (kill -9, a CI cancel) run no exit hook; what they started must
 * not outlive them. Each runs as a real child process until it has started its servers; then it alone is SIGKILLed
 * and every process that was under it must be gone within seconds, by pid (cli/tether.ts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { descendants, killAll, waitEnded, type Proc } from '../harness/process-tree.ts';

const ROOT = join(import.meta.dirname, '..', '..');

/** Polls the processes under `child` until `ready` holds of them; rejects if the child exits first. */
async function waitTree(child: ChildProcess, ready: (procs: Proc[]) => boolean, output: () => string, timeoutMs = 90_000): Promise<Proc[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const procs = descendants(child.pid!);
    if (ready(procs)) return procs;
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited before it started its servers:\n${output()}`);
    if (Date.now() > deadline) throw new Error(`not started within ${timeoutMs} ms: ${JSON.stringify(procs)}\n${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Starts `args`, waits for `ready`, SIGKILLs it alone, and returns what was under it and is still running 12 s on.
 * Its temp dirs go in one of ours, removed after: a process killed with SIGKILL cannot remove its own.
 */
async function killedLeaves(args: readonly string[], ready: (procs: Proc[]) => boolean): Promise<{ started: Proc[]; left: Proc[] }> {
  const tmp = mkdtempSync(join(tmpdir(), 'sm-sigkill-'));
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, TMPDIR: tmp }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-8192)));
  child.stderr!.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-8192)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let started: Proc[] = [];
  try {
    started = await waitTree(child, ready, () => out);
    // Now: it may have started more since the check.
    started = [...new Map([...started, ...descendants(child.pid!)].map((p) => [p.pid, p])).values()];
    child.kill('SIGKILL');
    await exited;
    // The bench's own cleanup SIGTERMs its children with a 3 s grace; the watchdogs SIGKILL 5 s after their SIGTERM.
    return { started, left: await waitEnded(started, 12_000) };
  } finally {
    child.kill('SIGKILL');
    killAll(started);
    rmSync(tmp, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  }
}

test('bench - shardmind bench killed with SIGKILL: the bench, its nats-server and its echo responder are gone', async () => {
  const out = mkdtempSync(join(tmpdir(), 'sm-bench-sigkill-'));
  try {
    const { started, left } = await killedLeaves([join(ROOT, 'cli', 'bin.mjs'), 'bench', '--quick', '--only', 'floor', '--out', out], (procs) =>
      procs.some((p) => p.args.includes('echo-responder')),
    );
    assert.ok(started.some((p) => p.args.includes('nats-server')), JSON.stringify(started));
    assert.equal(left, [], `still running 12 s after shardmind bench was SIGKILLed`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

// The hosts also end on HEAD before the demo tied them (a host whose nats-server went and whose stdout is a dead pipe
// does not last); tied, they are sent SIGTERM and drain, rather than end by accident.
test('demo - the demo killed with SIGKILL: its three hosts and nats-servers are gone', async () => {
  const { started, left } = await killedLeaves(['--import', 'tsx', join(ROOT, 'demo', 'main.ts')], (procs) =>
    procs.filter((p) => / host --node /.test(p.args)).length === 3,
  );
  assert.is(started.filter((p) => p.args.includes('nats-server')).length, 3, JSON.stringify(started));
  assert.equal(left, [], `still running 12 s after the demo was SIGKILLed`);
});

test.run();
