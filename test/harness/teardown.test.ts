/**
 * Teardown is final: a restart that fires after a nats-server was destroyed, or after a host cluster was stopped
 * (a fault test's "restart in 3 s" timer outliving the test), is refused instead of starting a process nobody
 * stops on a dir that teardown removes. And a test file that crashes (an uncaught exception skips its `finally`
 * and `after`) takes the nats-servers and hosts it started with it, and their temp dirs.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { startNatsServer } from '../../cli/index.ts';
import { oneMiniConfig, NODE } from '../client/one-mini.ts';
import { startHosts } from './hosts.ts';

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return false;
  }
}

test('teardown - a nats-server restart racing destroy() is refused, and the store dir is gone', async () => {
  const server = await startNatsServer();
  const base = dirname(server.storeDir);
  const first = server.pid;
  server.kill('SIGKILL');
  await server.waitExit();
  // destroy() and a restart timer firing in the same tick.
  const destroyed = server.destroy();
  const restart = server.start().then(
    () => undefined,
    (err: unknown) => err as Error,
  );
  await destroyed;
  const err = await restart;
  assert.ok(err, 'the restart after destroy() is refused');
  assert.match(err.message, /was destroyed/);
  assert.is(server.pid, first, 'no second nats-server was spawned');
  assert.is(server.running, false);
  assert.not.ok(existsSync(base), 'the store dir is removed');
  await server.destroy();
});

test('teardown - a host restart while its cluster stops is refused; no host outlives stop()', async () => {
  const nats = await startNatsServer();
  try {
    const cluster = await startHosts({ config: oneMiniConfig(nats.url) });
    const host = cluster.host(NODE);
    const first = host.pid;
    const stopping = cluster.stop();
    await host.waitExit();
    // The host is down and the cluster is still closing its connection: a restart timer fires now.
    const err = await host.start(10_000).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    await stopping;
    assert.ok(err, 'the restart after stop() is refused');
    assert.match(err.message, /cluster was stopped/);
    assert.is(host.pid, first, 'no second host was spawned');
    assert.not.ok(alive(first), 'the first host has exited');
    assert.not.ok(existsSync(cluster.dataDir), 'the data dir is removed');
    await cluster.stop();
  } finally {
    await nats.destroy();
  }
});

test('teardown - a test file that crashes mid-test leaves no nats-server, host or temp dir behind', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'crash-'));
  let started: { nats: number; host: number; natsDir: string; hostsDir: string } | undefined;
  try {
    const run = spawnSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', 'fixtures', 'crashing-file.ts')], {
      encoding: 'utf8',
      env: { ...process.env, TMPDIR: tmp },
      timeout: 120_000,
    });
    const line = run.stdout.split('\n').find((l) => l.startsWith('STARTED '));
    assert.ok(line, `the fixture started its servers:\n${run.stdout}\n${run.stderr}`);
    started = JSON.parse(line.slice('STARTED '.length)) as typeof started & object;
    assert.is(run.status, 1, 'it crashed');
    assert.match(run.stderr, /crashed, as planned/);
    // SIGKILL is sent as the process exits; give the kernel a moment to finish them off.
    const deadline = Date.now() + 3_000;
    while ((alive(started.nats) || alive(started.host)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.not.ok(alive(started.nats), 'the nats-server died with the file');
    assert.not.ok(alive(started.host), 'the host died with the file');
    assert.not.ok(existsSync(started.natsDir), 'the nats-server store dir is removed');
    assert.not.ok(existsSync(started.hostsDir), 'the hosts dir is removed');
  } finally {
    for (const pid of [started?.nats, started?.host]) if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(tmp, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  }
});

test.run();
