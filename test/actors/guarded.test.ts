/**
 * `guarded` subscription callbacks on a real nats-server: a handler that throws never reaches nats.js (the
 * subscription and the connection keep reading), a request gets an error reply (the thrown ShardmindError's code, or
 * INTERNAL), a message whose headers nats.js cannot decode is answered in msgpack, and reports are throttled to a
 * bounded number per window, with the count of those dropped.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, type Msg, type NatsConnection } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { ManualClock } from '../../actors/index.ts';
import { detached, guarded, ReportThrottle } from '../../actors/guarded.ts';
import { ErrorCode, ShardmindError, decodePayload, encodePayload, readHeaders } from '../../protocol/index.ts';
import { MALFORMED_HEADER_BLOCK, publishRaw } from '../harness/raw-publish.ts';

interface Ctx {
  nats?: NatsServerProcess;
  nc?: NatsConnection;
}

const t = suite<Ctx>('guarded');

t.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  ctx.nc = await connect({ servers: ctx.nats.url });
});

t.after(async (ctx) => {
  await ctx.nc?.close();
  await ctx.nats?.destroy();
});

async function ask(nc: NatsConnection, subject: string): Promise<Record<string, unknown>> {
  const m = await nc.request(subject, encodePayload({ v: 1 }, 'msgpack'), { timeout: 3_000 });
  return decodePayload(m.data, 'msgpack') as Record<string, unknown>;
}

t('a throwing handler: error replies, reports, and the subscription keeps reading', async (ctx) => {
  const nc = ctx.nc!;
  const reports: string[] = [];
  const throttle = new ReportThrottle((err, where) => reports.push(`${where}: ${(err as Error).message}`));
  let handled = 0;
  nc.subscribe('g.throws', {
    callback: guarded(
      'test',
      (msg) => {
        handled++;
        // Reads the headers as an unguarded handler did: nats.js throws on a block it cannot decode.
        void msg.headers;
        if (handled % 2 === 1) throw new TypeError('a bug');
        msg.respond(encodePayload({ v: 1, ok: true }, 'msgpack'));
      },
      throttle,
    ),
  });
  await nc.flush();

  const first = await ask(nc, 'g.throws');
  assert.is((first['error'] as { code: string }).code, ErrorCode.INTERNAL);
  assert.ok(!String((first['error'] as { message: string }).message).includes('a bug'), 'the bug stays in the log, not the reply');
  assert.equal(await ask(nc, 'g.throws'), { v: 1, ok: true }, 'the next message is handled');

  // Headers nats.js cannot decode: the handler throws BAD_HEADER, the reply comes in msgpack.
  const inbox = `g.inbox.${Date.now()}`;
  const sub = nc.subscribe(inbox, { max: 1 });
  const replied = (async (): Promise<Msg | undefined> => {
    for await (const m of sub) return m;
    return undefined;
  })();
  await nc.flush();
  await publishRaw(ctx.nats!.url, 'g.throws', inbox, MALFORMED_HEADER_BLOCK, encodePayload({ v: 1 }, 'msgpack'));
  const reply = await replied;
  assert.ok(reply);
  assert.is(readHeaders(reply).ok, true);
  assert.is(((decodePayload(reply.data, 'msgpack') as { error: { code: string } }).error).code, ErrorCode.INTERNAL);

  assert.equal(await ask(nc, 'g.throws'), { v: 1, ok: true }, 'still reading after the malformed headers');
  assert.is(reports.length, 2);
  assert.match(reports[0]!, /^test \(g\.throws\): a bug/);
  assert.match(reports[1]!, /header key/);
});

t('a thrown ShardmindError is the reply; a message without a reply subject is only reported', async (ctx) => {
  const nc = ctx.nc!;
  const reports: unknown[] = [];
  nc.subscribe('g.refuses', {
    callback: guarded(
      'refuses',
      () => {
        throw new ShardmindError(ErrorCode.NOT_FOUND, 'nothing here');
      },
      new ReportThrottle((err) => reports.push(err)),
    ),
  });
  await nc.flush();
  const reply = await ask(nc, 'g.refuses');
  assert.equal(reply['error'], { code: ErrorCode.NOT_FOUND, message: 'nothing here', retryable: false });
  nc.publish('g.refuses', encodePayload({ v: 1 }, 'msgpack'));
  await nc.flush();
  await ask(nc, 'g.refuses');
  assert.is(reports.length, 3, 'each throw reported, with or without a reply subject');
});

t('detached: a rejected promise is reported, not left unhandled', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    const reports: string[] = [];
    const throttle = new ReportThrottle((err, where) => reports.push(`${where}: ${(err as Error).message}`));
    detached(Promise.reject(new Error('late failure')), 'a read', throttle);
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(reports, ['a read: late failure']);
    assert.equal(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

t('the throttle: at most the burst per window, then one line counting what it dropped', () => {
  const clock = new ManualClock(1_000);
  const lines: string[] = [];
  const throttle = new ReportThrottle((err, where) => lines.push(`${where}: ${String(err)}`), 3, 10_000, clock);
  for (let i = 0; i < 1_000; i++) throttle.note(`e${i}`, 'flood');
  assert.equal(lines, ['flood: e0', 'flood: e1', 'flood: e2']);
  clock.advance(9_999);
  throttle.note('still inside', 'flood');
  assert.is(lines.length, 3);
  clock.advance(1);
  throttle.note('next window', 'flood');
  assert.equal(lines.slice(3), ['flood: 998 more like it were not logged (at most 3 a 10 s)', 'flood: next window']);

  // A report sink that throws does not undo the guard.
  const broken = new ReportThrottle(() => {
    throw new Error('log sink down');
  });
  broken.note(new Error('x'), 'where');
});

t.run();
