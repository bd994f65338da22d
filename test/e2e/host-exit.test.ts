/**
 * `shardmind host` exits after SIGTERM: its drain closes what shardmind opened, and when something else still holds
 * the event loop (nats.js 2.x's ordered consumer retrying on a ref'd timer after it was stopped, the cause of
 * walkthrough-session12-ops F14), the CLI ends the process a bounded time after the drain, exit code 0, naming what
 * was open — instead of living on after `host stopped` until a second signal or SIGKILL.
 */
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';
import { oneMiniConfig, NODE } from '../client/one-mini.ts';

const HELD = join(import.meta.dirname, '..', 'fixtures', 'held-event-loop.mjs');

async function sigtermToExit(cluster: HostCluster): Promise<{ ms: number; code: number | null; log: string }> {
  const host = cluster.host(NODE);
  const at = Date.now();
  host.kill('SIGTERM');
  // The harness's own stop would SIGKILL after 10 s: wait longer than any bound asserted below, then give up.
  const code = await Promise.race([host.waitExit(), new Promise<'alive'>((r) => setTimeout(() => r('alive'), 12_000))]);
  if (code === 'alive') {
    const log = host.stderr();
    await host.stop(0);
    assert.unreachable(`the host is still running 12 s after SIGTERM:\n${log.slice(-2000)}`);
  }
  return { ms: Date.now() - at, code: code as number | null, log: host.stderr() };
}

test('host exit - after SIGTERM a host exits 0 soon after its drain, with nothing left open', async () => {
  const nats: NatsServerProcess = await startNatsServer();
  const cluster = await startHosts({ config: oneMiniConfig(nats.url) });
  try {
    const { ms, code, log } = await sigtermToExit(cluster);
    assert.is(code, 0, log);
    assert.match(log, 'host stopped');
    assert.not.match(log, 'after the drain, held by', 'a clean drain leaves nothing holding the process');
    // Each line: UTC date and time, level, the node's tag (cli/log-line.ts).
    assert.match(log, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO  \[mini-1\] SIGTERM: draining/m);
    assert.match(log, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO  \[mini-1 email stopped\] → stopped$/m);
    assert.ok(ms < 5_000, `exited ${ms} ms after SIGTERM`);
  } finally {
    await cluster.stop();
    await nats.destroy();
  }
});

test('host exit - a timer something else left running does not keep a drained host alive: exit 0 within the bound, naming it', async () => {
  const nats: NatsServerProcess = await startNatsServer();
  const cluster = await startHosts({ config: oneMiniConfig(nats.url), nodeArgs: ['--import', HELD] });
  try {
    const { ms, code, log } = await sigtermToExit(cluster);
    assert.is(code, 0, log);
    assert.match(log, 'host stopped');
    assert.match(log, /still running 2000 ms after the drain, held by .*Timeout ×1.*: exiting \(0\)/, log.slice(-600));
    assert.ok(ms < 6_000, `exited ${ms} ms after SIGTERM`);
  } finally {
    await cluster.stop();
    await nats.destroy();
  }
});

test.run();
