/**
 * Starting nats-server: a port that another process holds is a failed start (with the server's own reason), never
 * a "ready" server that is not there; and the ports tests pick stay out of the range outgoing connections use.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server } from 'node:net';
import { freePort, startNatsServer } from '../../cli/index.ts';

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

test.run();
