/**
 * The router's record of which shards' leaders it hears (`sm.hb.<domain>`): only configured domains are kept, so
 * beats on made-up subjects cannot grow it without bound (review-session10 finding 10). A real nats-server.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, type NatsConnection } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { encodePayload, heartbeatSubject } from '../../protocol/index.ts';
import { LeaderBeats } from '../../router/index.ts';

interface Ctx {
  nats?: NatsServerProcess;
  nc?: NatsConnection;
  beats?: LeaderBeats;
}

const t = suite<Ctx>('router leader beats');

t.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  ctx.nc = await connect({ servers: ctx.nats.url });
});

t.after(async (ctx) => {
  ctx.beats?.stop();
  await ctx.nc?.close();
  await ctx.nats?.destroy();
});

t('beats of configured domains are heard; beats on other subjects are not kept', async (ctx) => {
  const nc = ctx.nc!;
  const beats = new LeaderBeats(nc, new Set(['calendar', 'email']), 1_500, Date.now, () => {});
  ctx.beats = beats;
  await nc.flush();
  const beat = encodePayload({ v: 1 }, 'msgpack');
  for (let i = 0; i < 500; i++) nc.publish(heartbeatSubject(`junk-${i}`), beat);
  nc.publish(heartbeatSubject('email'), beat);
  await nc.flush();
  const deadline = Date.now() + 5_000;
  while (!beats.heard('email')) {
    if (Date.now() > deadline) throw new Error('the email beat was never heard');
    await new Promise((r) => setTimeout(r, 10));
  }
  // The email beat was published after the junk on one connection, so all of the junk has been handled by now.
  assert.is(beats.tracked, 1);
  assert.not.ok(beats.heard('junk-7'));
  assert.not.ok(beats.heard('calendar'));
});

t.run();
