/**
 * `retract` with `validTo` before the fact's `validFrom`, against a real nats-server and host (walkthrough-session11
 * finding 18): refused with BAD_REQUEST naming `validTo`, as `remember` refuses `validTo` before `validFrom`, through
 * the router and on the shard, in JSON and msgpack; nothing is appended and the fact stays active. It was accepted
 * and clamped: `retracted`, with `validTo` equal to `validFrom`. A `validTo` at or after `validFrom` still retracts.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { headers } from 'nats';
import {
  CONTENT_TYPE_HEADER,
  ErrorCode,
  JSON_CONTENT_TYPE,
  decodePayload,
  encodePayload,
  memSubject,
  shardSubject,
  type Encoding,
} from '../../protocol/index.ts';
import { startRawOneMini, stopRawOneMini, type RawOneMini } from '../harness/router-ready.ts';
import { NODE } from '../client/one-mini.ts';

const retract = suite<RawOneMini>('retract before start');

retract.before(async (ctx) => void Object.assign(ctx, await startRawOneMini()));
retract.after(async (ctx) => stopRawOneMini(ctx));

type Reply = Record<string, unknown> & { error?: { code: string; message: string } };

async function ask(ctx: RawOneMini, subject: string, body: object, encoding: Encoding = 'json'): Promise<Reply> {
  const h = headers();
  if (encoding === 'json') h.set(CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE);
  for (let attempt = 1; ; attempt++) {
    const msg = await ctx.nc.request(subject, encodePayload(body, encoding), { timeout: 5_000, headers: h });
    const reply = decodePayload(msg.data, encoding) as Reply;
    // A late heartbeat on a loaded box makes the shard guard answer NOT_LEADER; a client retries it.
    if (reply.error?.code !== ErrorCode.NOT_LEADER || attempt === 20) return reply;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const appliedSeq = async (ctx: RawOneMini): Promise<number> => (await ctx.hosts.host(NODE).shard('calendar'))?.appliedSeq ?? -1;

retract('validTo before the fact began - BAD_REQUEST naming validTo, nothing appended, the fact still active', async (ctx) => {
  const fact = { text: 'Carol works from Lisbon', subject: 'carol', predicate: 'works_from', object: 'Lisbon', validFrom: '2026-11-20T00:00:00Z' };
  const wrote = await ask(ctx, memSubject('remember'), { v: 1, agent: 'py', opId: 'carol-1', domain: 'calendar', fact });
  assert.is(wrote['status'], 'created', JSON.stringify(wrote));
  const factId = wrote['factId'] as string;
  const before = await appliedSeq(ctx);
  const cases: [string, Encoding][] = [
    [memSubject('retract'), 'json'],
    [shardSubject('calendar', 'retract'), 'json'],
    [shardSubject('calendar', 'retract'), 'msgpack'],
  ];
  for (const [i, [subject, encoding]] of cases.entries()) {
    for (const validTo of ['2000-01-01T00:00:00Z', '2026-11-19T23:59:59.999Z']) {
      const reply = await ask(ctx, subject, { v: 1, agent: 'py', opId: `early-${i}-${validTo}`, domain: 'calendar', factId, validTo }, encoding);
      assert.is(reply.error?.code, ErrorCode.BAD_REQUEST, `${subject} ${encoding} ${validTo}: ${JSON.stringify(reply)}`);
      assert.match(reply.error!.message, /^validTo: must not be before the fact's validFrom \(2026-11-20T00:00:00\.000Z\)/);
    }
  }
  assert.is(await appliedSeq(ctx), before, 'nothing appended');
  const got = await ask(ctx, shardSubject('calendar', 'get'), { v: 1, factId });
  const stored = got['fact'] as { status: string; validTo?: string };
  assert.is(stored.status, 'active', JSON.stringify(got));
  assert.is(stored.validTo, undefined);

  // At validFrom exactly, and later, a retraction is what it always was.
  const ok = await ask(ctx, memSubject('retract'), { v: 1, agent: 'py', opId: 'carol-retract', domain: 'calendar', factId, validTo: '2026-11-20T00:00:00Z' });
  assert.is(ok['status'], 'retracted', JSON.stringify(ok));
  const after = await ask(ctx, shardSubject('calendar', 'get'), { v: 1, factId, minSeq: { calendar: ok['seq'] } });
  assert.is((after['fact'] as { validTo?: string }).validTo, '2026-11-20T00:00:00.000Z');
});

retract.run();
