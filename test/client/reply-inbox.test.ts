/**
 * The client's requests over one reply subscription (`client/reply-inbox.ts`), on a real nats-server: replies reach
 * their own requests in any order, failures are nats.js's own errors (so the transport maps them as before), a
 * connection's inbox prefix is kept, and closing the connection fails what still waits at once.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, ErrorCode as NatsErrorCode, NatsError, headers, type NatsConnection } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { ErrorCode, ShardmindError, Transport } from '../../client/index.ts';
import { ReplyInbox } from '../../client/reply-inbox.ts';
import { encodePayload } from '../../protocol/index.ts';

interface Ctx {
  nats?: NatsServerProcess;
  nc?: NatsConnection;
  responder?: NatsConnection;
  /** Reply subjects the echo responder saw, newest last. */
  replySubjects: string[];
}

const t = suite<Ctx>('reply inbox', { replySubjects: [] });
const utf8 = new TextEncoder();
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

t.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  ctx.nc = await connect({ servers: ctx.nats.url });
  ctx.responder = await connect({ servers: ctx.nats.url });
  // Echoes after the delay the request names, in ms, with the request's headers.
  ctx.responder.subscribe('inbox.echo', {
    callback: (_e, m) => {
      ctx.replySubjects.push(m.reply ?? '');
      setTimeout(() => m.respond(m.data, m.headers ? { headers: m.headers } : undefined), Number(text(m.data)));
    },
  });
  ctx.responder.subscribe('inbox.silent', { callback: () => undefined });
  ctx.responder.subscribe('inbox.v1', { callback: (_e, m) => void m.respond(encodePayload({ v: 1, ok: true }, 'msgpack')) });
  await ctx.responder.flush();
});

t.after(async (ctx) => {
  await ctx.nc?.close();
  await ctx.responder?.close();
  await ctx.nats?.destroy();
});

async function natsFailure(p: Promise<unknown>): Promise<NatsError> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, NatsError);
    return err as NatsError;
  }
  throw new Error('expected the request to fail');
}

t('replies reach their own requests, in whatever order they come back; headers go out with the request', async (ctx) => {
  const inbox = new ReplyInbox(ctx.nc!);
  const h = headers();
  h.set('x-test', 'kept');
  const replies = await Promise.all(['40', '0', '20'].map((d) => inbox.request('inbox.echo', utf8.encode(d), 2_000, h)));
  assert.equal(replies.map((m) => text(m.data)), ['40', '0', '20']);
  assert.equal(replies.map((m) => m.headers?.get('x-test')), ['kept', 'kept', 'kept']);
});

t('no responders and a timeout are nats.js errors; a late reply is dropped', async (ctx) => {
  const inbox = new ReplyInbox(ctx.nc!);
  assert.is((await natsFailure(inbox.request('inbox.nobody', utf8.encode('x'), 2_000, undefined))).code, NatsErrorCode.NoResponders);
  assert.is((await natsFailure(inbox.request('inbox.silent', utf8.encode('x'), 30, undefined))).code, NatsErrorCode.Timeout);
  assert.is((await natsFailure(inbox.request('inbox.echo', utf8.encode('150'), 30, undefined))).code, NatsErrorCode.Timeout);
  // The late echo arrives while this request waits: it must not be taken for this one's reply.
  const next = await inbox.request('inbox.echo', utf8.encode('200'), 2_000, undefined);
  assert.is(text(next.data), '200');
});

t('timeouts share one timer: a short one behind a long one fails at its own deadline, the long one still gets its reply', async (ctx) => {
  const inbox = new ReplyInbox(ctx.nc!);
  const long = inbox.request('inbox.echo', utf8.encode('300'), 30_000, undefined);
  const started = performance.now();
  const short = [10, 40, 80].map((ms) => natsFailure(inbox.request('inbox.silent', utf8.encode('x'), ms, undefined)).then((e) => [e.code, performance.now() - started] as const));
  const failed = await Promise.all(short);
  assert.equal(failed.map(([code]) => code), [NatsErrorCode.Timeout, NatsErrorCode.Timeout, NatsErrorCode.Timeout]);
  // Each at (or just after) its own deadline, not at the long request's, and in deadline order.
  failed.forEach(([, at], i) => assert.ok(at >= [10, 40, 80][i]! - 1 && at < 5_000, `timed out after ${at} ms`));
  assert.ok(failed[0]![1] <= failed[1]![1] && failed[1]![1] <= failed[2]![1]);
  assert.is(text((await long).data), '300');
  // Requests made after the timer fired with nothing due still time out; a delay setTimeout would not take (NaN,
  // Infinity, 0) is 1 ms, as setTimeout reads it.
  assert.is((await natsFailure(inbox.request('inbox.silent', utf8.encode('x'), 20, undefined))).code, NatsErrorCode.Timeout);
  for (const odd of [Number.NaN, Infinity, 0]) {
    assert.is((await natsFailure(inbox.request('inbox.silent', utf8.encode('x'), odd, undefined))).code, NatsErrorCode.Timeout, String(odd));
  }
});

t('the transport maps them as it did over nc.request: UNAVAILABLE (no responders), TIMEOUT', async (ctx) => {
  const transport = new Transport(ctx.nc!, 'msgpack');
  assert.equal(await transport.request('inbox.v1', { v: 1 }, 2_000), { v: 1, ok: true });
  for (const [subject, code] of [['inbox.nobody', ErrorCode.UNAVAILABLE], ['inbox.silent', ErrorCode.TIMEOUT]] as const) {
    try {
      await transport.request(subject, { v: 1 }, 50);
      assert.unreachable();
    } catch (err) {
      assert.instance(err, ShardmindError);
      assert.is((err as ShardmindError).code, code);
      assert.is((err as ShardmindError).retryable, true);
    }
  }
});

t("a connection's inbox prefix is the reply subjects' prefix", async (ctx) => {
  const nc = await connect({ servers: ctx.nats!.url, inboxPrefix: 'agents.a1' });
  try {
    const reply = await new ReplyInbox(nc).request('inbox.echo', utf8.encode('0'), 2_000, undefined);
    assert.is(text(reply.data), '0');
    assert.ok(ctx.replySubjects.at(-1)!.startsWith('agents.a1.'), ctx.replySubjects.at(-1));
  } finally {
    await nc.close();
  }
});

t('closing the connection fails waiting requests at once, and later ones too', async (ctx) => {
  const nc = await connect({ servers: ctx.nats!.url });
  const inbox = new ReplyInbox(nc);
  const waiting = inbox.request('inbox.silent', utf8.encode('x'), 60_000, undefined);
  await nc.flush();
  const started = Date.now();
  await nc.close();
  assert.is((await natsFailure(waiting)).code, NatsErrorCode.ConnectionClosed);
  assert.ok(Date.now() - started < 5_000, 'failed at close, not at its timeout');
  assert.is((await natsFailure(inbox.request('inbox.echo', utf8.encode('0'), 2_000, undefined))).code, NatsErrorCode.ConnectionClosed);
});

t('a reply subscription the server refuses fails the waiting request with that error, not at its timeout', async () => {
  // A login that may subscribe only to `_INBOX.>` and `inbox.>`, on a connection whose inboxes are elsewhere.
  const nats = await startNatsServer({
    authorization: [
      'authorization {',
      '  users: [ { user: "u", password: "pw-inbox-test", permissions: { publish: { allow: [">"] }, subscribe: { allow: ["_INBOX.>", "inbox.>"] } } } ]',
      '}',
    ].join('\n'),
  });
  const login = { servers: nats.url, user: 'u', pass: 'pw-inbox-test' };
  const responder = await connect(login);
  const nc = await connect({ ...login, inboxPrefix: 'elsewhere' });
  try {
    responder.subscribe('inbox.echo', { callback: (_e, m) => void m.respond(m.data) });
    await responder.flush();
    const started = Date.now();
    const err = await natsFailure(new ReplyInbox(nc).request('inbox.echo', utf8.encode('x'), 10_000, undefined));
    assert.is(err.code, NatsErrorCode.PermissionsViolation);
    assert.ok(Date.now() - started < 5_000, 'failed when refused, not at its timeout');
  } finally {
    await nc.close();
    await responder.close();
    await nats.destroy();
  }
});

t.run();
