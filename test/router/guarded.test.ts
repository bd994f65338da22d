/**
 * The router's subscription guard: a callback that throws is logged and its request answered with an error
 * envelope, and the subscription keeps reading (unguarded, the throw ends nats.js's read loop and the connection
 * goes deaf). A real nats-server.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, type NatsConnection } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { decodePayload } from '../../protocol/index.ts';
import { guarded } from '../../router/index.ts';

interface Ctx {
  nats?: NatsServerProcess;
  server?: NatsConnection;
  client?: NatsConnection;
}

const t = suite<Ctx>('router subscription guard');
const utf8 = new TextEncoder();

t.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  ctx.server = await connect({ servers: ctx.nats.url });
  ctx.client = await connect({ servers: ctx.nats.url });
});

t.after(async (ctx) => {
  await ctx.client?.close();
  await ctx.server?.close();
  await ctx.nats?.destroy();
});

t('a throwing callback is logged and answered, and the next message is still read', async (ctx) => {
  const logged: string[] = [];
  ctx.server!.subscribe('guard.test', {
    callback: guarded('guard test', (line) => logged.push(line), (msg) => {
      if (new TextDecoder().decode(msg.data) === 'throw') throw new Error('a bug in the handler');
      msg.respond(msg.data);
    }),
  });
  await ctx.server!.flush();
  const failed = await ctx.client!.request('guard.test', utf8.encode('throw'), { timeout: 2_000 });
  const body = decodePayload(failed.data, 'msgpack') as { error?: { code?: string; message?: string } };
  assert.is(body.error?.code, 'INTERNAL');
  assert.match(body.error?.message ?? '', /a bug in the handler/);
  assert.is(logged.length, 1);
  assert.match(logged[0]!, /guard test: a message on guard\.test failed: Error: a bug in the handler/);
  const echoed = await ctx.client!.request('guard.test', utf8.encode('fine'), { timeout: 2_000 });
  assert.is(new TextDecoder().decode(echoed.data), 'fine');
});

t.run();
