/**
 * Starting nats-server: a port that another process holds is a failed start (with the server's own reason), never
 * a "ready" server that is not there; and the ports tests pick stay out of the range outgoing connections use.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server } from 'node:net';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { freePort, startNatsCluster, startNatsServer } from '../../cli/index.ts';

/**
 * A nats-server that loses the port race on purpose: the first `fails` starts whose config file name matches
 * `victim` exit as nats-server does when its port is taken; every other start is the real server. Each start's
 * config path is written to `starts` so a test can check what was cleaned up.
 */
function withLosingServer(victim: string, fails: number, fn: (starts: () => string[]) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sm-fake-nats-'));
    const script = join(dir, 'nats-server');
    const log = join(dir, 'starts');
    writeFileSync(
      script,
      [
        '#!/bin/sh',
        'if [ "$1" = "--version" ]; then exec nats-server --version; fi',
        `echo "$2" >> ${JSON.stringify(log)}`,
        `case "$2" in *${victim}) ;; *) exec nats-server "$@" ;; esac`,
        `count=$(grep -c ${JSON.stringify(victim)} ${JSON.stringify(log)})`,
        `if [ "$count" -le ${fails} ]; then`,
        '  echo "[FTL] Error listening on port: 127.0.0.1:1, \"listen tcp 127.0.0.1:1: bind: address already in use\"" >&2',
        '  exit 1',
        'fi',
        'exec nats-server "$@"',
        '',
      ].join('\n'),
    );
    chmodSync(script, 0o755);
    const before = process.env['NATS_SERVER'];
    process.env['NATS_SERVER'] = script;
    try {
      await fn(() => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []));
    } finally {
      if (before === undefined) delete process.env['NATS_SERVER'];
      else process.env['NATS_SERVER'] = before;
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test('a port held by another listener fails the start with the server’s reason', async () => {
  const port = await freePort();
  const squatter: Server = createServer();
  await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', () => resolve()));
  try {
    // The squatter answers TCP connects, so a start that only probed the port would wrongly report ready here.
    const err = await startNatsServer({ port }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.instance(err, Error);
    assert.match((err as Error).message, /exited during start/);
    assert.match((err as Error).message, /address already in use/);
  } finally {
    await new Promise<void>((resolve) => squatter.close(() => resolve()));
  }
});

test('picked ports are free and below the ephemeral range, so an outgoing connection cannot take one', async () => {
  const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
  for (const p of ports) assert.ok(p >= 1024 && p < 32_768, `port ${p}`);
  const server = await startNatsServer({});
  try {
    assert.ok(server.running);
    assert.ok(server.port < 32_768);
  } finally {
    await server.destroy();
  }
});

test(
  'a lone server that loses the port race twice starts on fresh ports the third time',
  withLosingServer('.conf', 2, async (starts) => {
    const server = await startNatsServer({});
    try {
      assert.ok(server.running);
      const paths = starts();
      assert.is(paths.length, 3);
      assert.is(new Set(paths).size, 3, 'each attempt has its own port, name and config');
      for (const p of paths.slice(0, 2)) assert.not.ok(existsSync(dirname(p)), `failed attempt's dir ${p} removed`);
    } finally {
      await server.destroy();
    }
  }),
);

test(
  'a third lost race is reported, with nothing left behind',
  withLosingServer('.conf', 3, async (starts) => {
    const err = await startNatsServer({}).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.instance(err, Error);
    assert.match((err as Error).message, /address already in use/);
    assert.is(starts().length, 3);
    for (const p of starts()) assert.not.ok(existsSync(dirname(p)));
  }),
);

test(
  'a cluster whose second server loses the race is started again whole; the first try’s servers are stopped',
  withLosingServer('n2.conf', 1, async (starts) => {
    const cluster = await startNatsCluster(3);
    try {
      assert.ok(cluster.servers.every((s) => s.running));
      const paths = starts();
      assert.is(paths.length, 6, 'two tries of three servers');
      const live = new Set(cluster.servers.map((s) => s.configPath));
      const firstTry = paths.filter((p) => !live.has(p));
      assert.is(firstTry.length, 3);
      for (const p of firstTry) assert.not.ok(existsSync(dirname(p)), `first try's ${p} stopped and removed`);
    } finally {
      await cluster.destroy();
    }
  }),
);

test.run();
