/**
 * fault-kit's `startWriters` when a writer cannot connect: the connections the earlier writers opened are closed
 * before the error reaches the caller, who has no handle to stop them with. Left open (maxReconnectAttempts -1) they
 * would reconnect forever and keep the test file alive until the runner's timeout.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect as natsConnect } from 'nats';
import { startNatsServer } from '../../cli/index.ts';
import { eventually, startWriters } from './fault-kit.ts';

test('startWriters - a writer that cannot connect: the writers connected before it are closed, and the error is thrown', async () => {
  // A real server that takes one connection: the first writer connects, the second is refused.
  const nats = await startNatsServer({ maxConnections: 1 });
  try {
    let failure: unknown;
    try {
      const writers = await startWriters([nats.url], { count: 2, connectTimeoutMs: 3_000 });
      await writers.stop();
    } catch (err) {
      failure = err;
    }
    // nats.js 2.29 does not act on the server's 'maximum connections exceeded': the connect times out (20 s by
    // default, 3 s here).
    assert.ok(failure instanceof Error, 'the second writer could not connect');
    assert.match(failure.message, /TIMEOUT|maximum connections/i);
    // The one connection the server takes is free again only if the first writer's was closed.
    // Each attempt gives up within 1 s: one made before the server has dropped the closed connection is refused, and
    // nats.js would otherwise wait out its 20 s connect timeout on that refusal (CI once ran out the 5 s that way).
    const nc = await eventually('a connection to the server', () => natsConnect({ servers: nats.url, maxReconnectAttempts: 0, timeout: 1_000 }), 10_000);
    await nc.close();
  } finally {
    await nats.destroy();
  }
});

test.run();
