/**
 * The router's requests to shards over one reply subscription: a reply reaches its own waiter, "no responders"
 * and a timeout fail with nats.js's codes ('503', 'TIMEOUT'), a late reply is ignored, and closing fails what
 * still waits; a reply with a malformed header block (anyone can publish to an inbox) is read by its body and does not
 * deafen the connection. A real nats-server.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, type NatsConnection } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { ReplyMux, RequestFailed } from '../../router/index.ts';
import { MALFORMED_HEADER_BLOCK, publishRaw } from '../harness/raw-publish.ts';

interface Ctx {
  nats?: NatsServerProcess;
  nc?: NatsConnection;
  responder?: NatsConnection;
}

const t = suite<Ctx>('reply mux');
const utf8 = new TextEncoder();
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

t.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  ctx.nc = await connect({ servers: ctx.nats.url });
  ctx.responder = await connect({ servers: ctx.nats.url });
  // Echoes after the delay the request names, in ms.
  ctx.responder.subscribe('mux.echo', {
    callback: (_e, m) => void setTimeout(() => m.respond(m.data), Number(text(m.data))),
  });
  ctx.responder.subscribe('mux.silent', { callback: () => undefined });
  // Answers through a raw client, with a header block nats.js throws on when the receiver reads `msg.headers`.
  ctx.responder.subscribe('mux.malformed', {
    callback: (_e, m) => void publishRaw(ctx.nats!.url, m.reply!, '', MALFORMED_HEADER_BLOCK, m.data).catch(() => undefined),
  });
  await ctx.responder.flush();
});

t.after(async (ctx) => {
  await ctx.nc?.close();
  await ctx.responder?.close();
  await ctx.nats?.destroy();
});

async function failure(p: Promise<unknown>): Promise<RequestFailed> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, RequestFailed);
    return err as RequestFailed;
  }
  throw new Error('expected the request to fail');
}

t('replies reach their own requests, in whatever order they come back', async (ctx) => {
  const mux = new ReplyMux(ctx.nc!);
  const replies = await Promise.all(['40', '0', '20'].map((d) => mux.request('mux.echo', utf8.encode(d), 2_000)));
  assert.equal(replies.map((m) => text(m.data)), ['40', '0', '20']);
  mux.close();
});

t('no responders is code 503, a timeout is code TIMEOUT and its late reply is dropped', async (ctx) => {
  const mux = new ReplyMux(ctx.nc!);
  assert.is((await failure(mux.request('mux.nobody', utf8.encode('x'), 2_000))).code, '503');
  assert.is((await failure(mux.request('mux.echo', utf8.encode('150'), 30))).code, 'TIMEOUT');
  // The late echo arrives while this next request waits: it must not be taken for this one's reply.
  const next = await mux.request('mux.echo', utf8.encode('300'), 2_000);
  assert.is(text(next.data), '300');
  mux.close();
});

t('a reply with malformed headers is read by its body, and the connection keeps reading', async (ctx) => {
  const logged: string[] = [];
  const mux = new ReplyMux(ctx.nc!, (line) => logged.push(line));
  const odd = await mux.request('mux.malformed', utf8.encode('body'), 3_000);
  assert.is(text(odd.data), 'body');
  // An empty one is not taken for "no responders" (its status cannot be read): it is an empty reply.
  assert.is((await mux.request('mux.malformed', new Uint8Array(0), 3_000)).data.length, 0);
  assert.is(text((await mux.request('mux.echo', utf8.encode('0'), 2_000)).data), '0');
  assert.equal(logged, []);
  mux.close();
});

t('close fails the requests still waiting', async (ctx) => {
  const mux = new ReplyMux(ctx.nc!);
  const waiting = mux.request('mux.silent', utf8.encode('x'), 5_000);
  mux.close();
  assert.is((await failure(waiting)).code, 'CONNECTION_CLOSED');
});

t.run();
