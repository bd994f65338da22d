/**
 * With its NATS server gone (walkthrough session 12, F9): a call that times out says the client is not connected to
 * NATS rather than reading as a slow host, and `close({ timeoutMs })` keeps to its bound — the connection's drain
 * counts against it instead of adding its own 2 s. Real nats-server, stopped under the client.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { connect, ErrorCode, OutcomeUnknownError, ShardmindError } from '../../client/index.ts';

const t = suite<{ nats?: NatsServerProcess }>('offline messages');

t.after(async (ctx) => {
  await ctx.nats?.destroy();
});

t('a timeout while reconnecting says so; close({ timeoutMs: 500 }) ends within its bound', async (ctx) => {
  ctx.nats = await startNatsServer();
  const client = await connect({ servers: ctx.nats.url, agent: 'offline-agent', timeoutMs: 400, deadlineMs: 1_500 });
  const statuses = client.connection.status();
  await ctx.nats.stop();
  for await (const s of statuses) if (s.type === 'disconnect') break;
  try {
    await client.recall({ query: 'anything', domain: 'files' });
    assert.unreachable('no server, no answer');
  } catch (err) {
    assert.instance(err, ShardmindError);
    const e = err as ShardmindError;
    assert.is(e.code, ErrorCode.TIMEOUT, e.message);
    assert.match(e.message, /not connected to NATS since \d{4}-\d\d-\d\dT/);
  }
  const inFlight = client.remember({ text: 'written while the server is gone' }, { domain: 'files' }).then(
    () => undefined,
    (err: unknown) => err,
  );
  const started = Date.now();
  await client.close({ timeoutMs: 500 });
  const took = Date.now() - started;
  assert.ok(took < 1_100, `close({ timeoutMs: 500 }) took ${took} ms`);
  assert.ok(client.connection.isClosed());
  assert.instance(await inFlight, OutcomeUnknownError);
});

t.run();
