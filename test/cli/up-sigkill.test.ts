/**
 * `shardmind up` killed with SIGKILL (the OOM killer, `kill -9`, a CI cancel) runs no exit hook; what it started must
 * not outlive it anyway. Starts `up` as a real child process, records every process under it (its nats-server, the
 * watchdog that ties it, tsx's esbuild service), kills `up` alone with SIGKILL and checks by pid that all of them are
 * gone within seconds, that the port is free, and that `up` starts again on the same port and data.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../cli/index.ts';

const BIN = join(import.meta.dirname, '..', '..', 'cli', 'bin.mjs');

interface Up {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exited: Promise<void>;
}

function startUp(port: number, dataDir: string): Up {
  // As a person runs it from elsewhere (the executable registers tsx itself), in the data dir: no cluster.config.ts
  // there, so `up` runs the shipped config.
  const child = spawn(process.execPath, [BIN, 'up', '--port', String(port), '--data', dataDir], {
    cwd: dataDir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, output: () => out, exited };
}

async function waitUp(up: Up, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!up.output().includes('shardmind is up.')) {
    if (up.child.exitCode !== null || up.child.signalCode !== null) throw new Error(`up exited before it was up:\n${up.output()}`);
    if (Date.now() > deadline) throw new Error(`up not up within ${timeoutMs} ms:\n${up.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Proc {
  readonly pid: number;
  readonly ppid: number;
  readonly command: string;
}

/** Every process, from `ps` (the same flags on Linux and macOS). */
function processes(): Proc[] {
  const r = spawnSync('ps', ['-A', '-o', 'pid=,ppid=,comm='], { encoding: 'utf8' });
  return r.stdout.split('\n').flatMap((line) => {
    const m = line.trim().match(/^(\d+)\s+(\d+)\s+(.*)$/);
    return m ? [{ pid: Number(m[1]), ppid: Number(m[2]), command: m[3]! }] : [];
  });
}

/** The processes under `root`, children and their children. */
function descendants(root: number): Proc[] {
  const all = processes();
  const found: Proc[] = [];
  const parents = [root];
  while (parents.length > 0) {
    const parent = parents.pop()!;
    for (const p of all) {
      if (p.ppid !== parent) continue;
      found.push(p);
      parents.push(p.pid);
    }
  }
  return found;
}

/** Gone, or a zombie nobody has reaped yet (it holds no port, no file, no memory). */
function dead(pid: number): boolean {
  const r = spawnSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' });
  const stat = r.stdout.trim();
  return stat === '' || stat.startsWith('Z');
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

async function stopUp(up: Up): Promise<void> {
  if (up.child.exitCode !== null || up.child.signalCode !== null) return;
  up.child.kill('SIGINT');
  const timer = setTimeout(() => up.child.kill('SIGKILL'), 15_000);
  await up.exited;
  clearTimeout(timer);
}

test('up - killed with SIGKILL, its nats-server and everything else it started are gone within seconds, and up starts again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sm-up-sigkill-'));
  const port = await freePort();
  let started: Proc[] = [];
  const ups: Up[] = [];
  try {
    const up = startUp(port, dir);
    ups.push(up);
    await waitUp(up);
    started = descendants(up.child.pid!);
    assert.ok(
      started.some((p) => p.command.includes('nats-server')),
      `up's nats-server among its children: ${JSON.stringify(started)}`,
    );

    up.child.kill('SIGKILL');
    await up.exited;
    const deadline = Date.now() + 8_000;
    while (started.some((p) => !dead(p.pid)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const alive = started.filter((p) => !dead(p.pid));
    assert.equal(alive, [], `still running 8 s after up was SIGKILLed: ${JSON.stringify(alive)}`);
    assert.ok(await portFree(port), `port ${port} is free again`);

    // What a person does next: `shardmind up` again, on the same port and data.
    const again = startUp(port, dir);
    ups.push(again);
    await waitUp(again);
    await stopUp(again);
    assert.is(again.child.exitCode, 0, again.output());
  } finally {
    for (const up of ups) await stopUp(up);
    // A failed check must not leave what it found running.
    for (const p of started) {
      if (dead(p.pid)) continue;
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // Exited between the check and the kill.
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
