/**
 * cli/tether.ts, the watchdog that ends a child when the process that started it dies without stopping it
 * (SIGKILL runs no exit hook). Real processes: a fixture ties `sleep`s to itself and is SIGKILLed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tether } from '../../cli/index.ts';
import { ignoresHangup } from '../harness/process-tree.ts';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'tethered.ts');

/** Running, and not a zombie nobody has reaped yet (the zombie check reads Linux's /proc; elsewhere a live pid counts). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return true;
  }
}

async function until(done: () => boolean, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!done() && Date.now() - started < timeoutMs) await new Promise((r) => setTimeout(r, 25));
  return Date.now() - started;
}

function killAlive(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

interface Held {
  readonly plain: number;
  readonly paused: number;
  readonly stubborn: number;
  readonly hangupProof: number;
  readonly watchdogs: number[];
}

/** Runs the `hold` fixture in a process group of its own, and `kill`s it once its children are tied. */
async function holdThenKill(kill: (parent: ChildProcess, started: Held) => Promise<void> | void, check: (started: Held) => Promise<void>): Promise<void> {
  const parent = spawn(process.execPath, ['--import', 'tsx', FIXTURE, 'hold'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const exited = new Promise<void>((resolve) => parent.once('exit', () => resolve()));
  let pids: number[] = [];
  try {
    let out = '';
    const started = await new Promise<Held>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the fixture did not start: ${out}`)), 30_000);
      parent.stdout!.on('data', (b: Buffer) => {
        out += b.toString();
        const line = out.split('\n').find((l) => l.startsWith('STARTED '));
        if (line === undefined) return;
        clearTimeout(timer);
        resolve(JSON.parse(line.slice('STARTED '.length)) as Held);
      });
      void exited.then(() => reject(new Error(`the fixture exited: ${out}`)));
    });
    pids = [started.plain, started.paused, started.stubborn, started.hangupProof, ...started.watchdogs];
    assert.ok(pids.every(alive), 'all running before the kill');
    await kill(parent, started);
    await exited;
    await check(started);
  } finally {
    parent.kill('SIGKILL');
    killAlive(pids.filter(alive));
  }
}

test('tether - the parent SIGKILLed: a plain, a paused and a SIGTERM-ignoring child are ended, and the watchdogs exit', async () => {
  await holdThenKill(
    (parent) => void parent.kill('SIGKILL'),
    async (started) => {
      const quick = await until(() => !alive(started.plain) && !alive(started.paused) && !alive(started.hangupProof), 3_000);
      assert.not.ok(alive(started.plain), 'the plain child got SIGTERM');
      assert.not.ok(alive(started.paused), 'the paused child was continued and got SIGTERM');
      assert.ok(quick < 2_000, `ended at once (${quick} ms)`);
      await until(() => [started.stubborn, ...started.watchdogs].every((p) => !alive(p)), 5_000);
      assert.not.ok(alive(started.stubborn), 'the child that ignores SIGTERM got SIGKILL after the grace');
      assert.equal(started.watchdogs.filter(alive), [], 'no watchdog outlives its child');
    },
  );
});

test('tether - a hangup of the whole group (a closed terminal) ends the parent, and a child that ignores SIGHUP with it', async () => {
  await holdThenKill(
    async (parent, started) => {
      await until(() => started.watchdogs.every(ignoresHangup), 10_000);
      process.kill(-parent.pid!, 'SIGHUP');
    },
    async (started) => {
      await until(() => !alive(started.hangupProof) && started.watchdogs.every((p) => !alive(p)), 5_000);
      assert.not.ok(alive(started.hangupProof), 'the child that lived through the SIGHUP was ended by its watchdog');
      assert.equal(started.watchdogs.filter(alive), [], 'no watchdog outlives its child');
    },
  );
});

test('tether - release() ends the watchdog at once and leaves the child alone', async () => {
  const child = spawn('sleep', ['300'], { stdio: 'ignore' });
  const tie = tether(child);
  try {
    assert.ok(tie.pid !== undefined && alive(tie.pid), 'the watchdog runs');
    tie.release();
    tie.release();
    await until(() => !alive(tie.pid!), 2_000);
    assert.not.ok(alive(tie.pid!), 'the watchdog is gone');
    assert.ok(alive(child.pid!), 'the child still runs');
  } finally {
    child.kill('SIGKILL');
  }
});

test('tether - the watchdog keeps nothing alive: a process that ends by itself ends, and its tied child with it', async () => {
  const run = spawnSync(process.execPath, ['--import', 'tsx', FIXTURE, 'exit'], { encoding: 'utf8', timeout: 20_000 });
  const line = run.stdout.split('\n').find((l) => l.startsWith('STARTED '));
  assert.ok(line, `the fixture started its child: ${run.stdout}${run.stderr}`);
  const started = JSON.parse(line.slice('STARTED '.length)) as { child: number; watchdog: number };
  try {
    assert.is(run.status, 0, `it exited by itself, not at the 20 s timeout: ${run.stderr}`);
    await until(() => !alive(started.child) && !alive(started.watchdog), 3_000);
    assert.not.ok(alive(started.child), 'the child ended with it');
    assert.not.ok(alive(started.watchdog), 'and so did the watchdog');
  } finally {
    killAlive([started.child, started.watchdog].filter(alive));
  }
});

test.run();
