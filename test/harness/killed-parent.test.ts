/**
 * A test file SIGKILLed mid-test (the runner's timeout, a kill -9, an OOM kill) runs no exit hook, no `finally`,
 * no `after`: the nats-servers and hosts the harness started for it must end anyway (cli/tether.ts), or they keep
 * running with nobody to stop them, and so must their watchdogs. Its temp dirs stay: the runner's sandbox sweeps
 * those (§77).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNatsServer } from '../../cli/index.ts';

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

/** The pids of the watchdogs tied to `pid` (cli/tether.ts names itself `shardmind-tether <pid> <ticks>`). */
function watchdogsOf(pid: number): number[] {
  const ps = spawnSync('ps', ['-A', '-o', 'pid=,args='], { encoding: 'utf8' }).stdout;
  return ps.split('\n').flatMap((line) => {
    const m = line.trim().match(/^(\d+)\s.*shardmind-tether (\d+) /);
    return m && Number(m[2]) === pid && alive(Number(m[1])) ? [Number(m[1])] : [];
  });
}

test('a test process killed with SIGKILL leaves no nats-server, host or watchdog running', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'killed-'));
  const nats = await startNatsServer();
  let started: { nats: number; host: number } | undefined;
  let watchdogs: number[] = [];
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', 'fixtures', 'killed-file.ts'), nats.url], {
    env: { ...process.env, TMPDIR: tmp },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    let out = '';
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    started = await new Promise<{ nats: number; host: number }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the fixture did not start within 60 s:\n${out}\n${err}`)), 60_000);
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        const line = out.split('\n').find((l) => l.startsWith('STARTED '));
        if (line === undefined) return;
        clearTimeout(timer);
        resolve(JSON.parse(line.slice('STARTED '.length)) as { nats: number; host: number });
      });
      void exited.then(() => reject(new Error(`the fixture exited before it started:\n${out}\n${err}`)));
    });
    watchdogs = [...watchdogsOf(started.nats), ...watchdogsOf(started.host)];
    assert.is(watchdogs.length, 2, 'one watchdog for each');
    child.kill('SIGKILL');
    await exited;
    // The watchdogs SIGTERM both at once: the host drains and exits, the server stops; SIGKILL 5 s on.
    const deadline = Date.now() + 10_000;
    const left = (): number[] => [started!.nats, started!.host, ...watchdogs].filter(alive);
    while (left().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.not.ok(alive(started.nats), 'the nats-server ended with the process that started it');
    assert.not.ok(alive(started.host), 'the host ended with the process that started it');
    assert.equal(watchdogs.filter(alive), [], 'the watchdogs are gone too');
  } finally {
    child.kill('SIGKILL');
    for (const pid of [started?.nats, started?.host, ...watchdogs]) if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGKILL');
    await nats.destroy();
    rmSync(tmp, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  }
});

test.run();
