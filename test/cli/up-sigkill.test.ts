/**
 * `shardmind up` killed with SIGKILL (the OOM killer, `kill -9`, a CI cancel) runs no exit hook; what it started must
 * not outlive it anyway. Starts `up` as a real child process, records every process under it (its nats-server, the
 * watchdog that ties it, tsx's esbuild service), kills `up` alone with SIGKILL and checks by pid that all of them are
 * gone within seconds, that the port is free, and that `up` starts again on the same port and data. The same when
 * its terminal is closed: SIGHUP to the whole group kills up, and its nats-server (for which SIGHUP means "reload")
 * must not be left running.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../cli/index.ts';
import { descendants, ignoresHangup, killAll, waitEnded, type Proc } from '../harness/process-tree.ts';

const BIN = join(import.meta.dirname, '..', '..', 'cli', 'bin.mjs');

interface Up {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exited: Promise<void>;
}

function startUp(port: number, dataDir: string, o: { ownGroup?: boolean } = {}): Up {
  // As a person runs it from elsewhere (the executable registers tsx itself), in the data dir: no cluster.config.ts
  // there, so `up` runs the shipped config.
  const child = spawn(process.execPath, [BIN, 'up', '--port', String(port), '--data', dataDir], {
    cwd: dataDir,
    stdio: ['ignore', 'pipe', 'pipe'],
    // A group of its own, as a terminal's foreground job has: what the terminal sends the group reaches up's children.
    detached: o.ownGroup ?? false,
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
      started.some((p) => p.args.includes('nats-server')),
      `up's nats-server among its children: ${JSON.stringify(started)}`,
    );

    up.child.kill('SIGKILL');
    await up.exited;
    const alive = await waitEnded(started, 8_000);
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
    killAll(started);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('up - its terminal closed (SIGHUP to its whole group): up dies of it, and its nats-server, which takes SIGHUP as a reload, goes too', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sm-up-sighup-'));
  const port = await freePort();
  let started: Proc[] = [];
  const up = startUp(port, dir, { ownGroup: true });
  try {
    await waitUp(up);
    started = descendants(up.child.pid!);
    assert.ok(started.some((p) => p.args.includes('nats-server')), JSON.stringify(started));
    const watchdogs = started.filter((p) => p.args.includes('shardmind-tether'));
    const deadline = Date.now() + 10_000;
    while (!watchdogs.every((p) => ignoresHangup(p.pid)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    process.kill(-up.child.pid!, 'SIGHUP');
    await up.exited;
    const alive = await waitEnded(started, 8_000);
    assert.equal(alive, [], `still running 8 s after the hangup: ${JSON.stringify(alive)}`);
    assert.ok(await portFree(port), `port ${port} is free again`);
  } finally {
    await stopUp(up);
    killAll(started);
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
