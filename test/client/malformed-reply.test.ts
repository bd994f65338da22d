/**
 * A reply whose header block nats.js cannot decode (anyone who sees a request can answer it), on a real nats-server:
 * the client's transport reads it as a reply without headers — a body is decoded in the request's encoding, an empty
 * one is an undecodable reply (a ShardmindError, not nats.js's BAD_HEADER) — and its connection keeps reading: the
 * next request is answered.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, type NatsConnection } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { ErrorCode, ShardmindError, Transport } from '../../client/index.ts';
import { encodePayload } from '../../protocol/index.ts';
import { MALFORMED_HEADER_BLOCK, publishRaw } from '../harness/raw-publish.ts';

interface Ctx {
  nats?: NatsServerProcess;
  nc?: NatsConnection;
  responder?: NatsConnection;
  /** Failures of the raw replies, if any: a test that saw one fails with it. */
  replyErrors: unknown[];
}

const t = suite<Ctx>('malformed reply', { replyErrors: [] });

t.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  ctx.nc = await connect({ servers: ctx.nats.url });
  ctx.responder = await connect({ servers: ctx.nats.url });
  const url = ctx.nats.url;
  // Answers through a raw TCP client, with the header block nats.js throws on: a body, or none.
  ctx.responder.subscribe('bad.body', {
    callback: (_e, m) => void publishRaw(url, m.reply ?? '', '', MALFORMED_HEADER_BLOCK, encodePayload({ v: 1, ok: 'body' }, 'msgpack')).catch((err: unknown) => ctx.replyErrors.push(err)),
  });
  ctx.responder.subscribe('bad.empty', {
    callback: (_e, m) => void publishRaw(url, m.reply ?? '', '', MALFORMED_HEADER_BLOCK, new Uint8Array(0)).catch((err: unknown) => ctx.replyErrors.push(err)),
  });
  ctx.responder.subscribe('good', { callback: (_e, m) => void m.respond(encodePayload({ v: 1, ok: 'good' }, 'msgpack')) });
  await ctx.responder.flush();
});

t.after(async (ctx) => {
  await ctx.nc?.close();
  await ctx.responder?.close();
  await ctx.nats?.destroy();
});

t('a reply with malformed headers is read without them, and the connection keeps reading', async (ctx) => {
  const transport = new Transport(ctx.nc!, 'msgpack');
  const body = await transport.request<{ ok: string }>('bad.body', { v: 1 }, 3_000);
  assert.is(body.ok, 'body', 'decoded in the request encoding');

  // Empty, with headers that cannot be read: not "no responders" (that needs a readable 503), just a bad reply.
  try {
    await transport.request('bad.empty', { v: 1 }, 3_000);
    assert.unreachable('an empty reply is not a v1 body');
  } catch (err) {
    assert.instance(err, ShardmindError, String(err));
    assert.is((err as ShardmindError).code, ErrorCode.INTERNAL, (err as Error).message);
  }

  // The same connection and inbox still read replies.
  for (let i = 0; i < 3; i++) assert.is((await transport.request<{ ok: string }>('good', { v: 1 }, 3_000)).ok, 'good');
  assert.equal(ctx.replyErrors, []);
});

t.run();
