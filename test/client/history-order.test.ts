/**
 * `history` through the router comes oldest first by world time (`validFrom`), then record time, as docs/protocol.md
 * says and each shard sorts it (walkthrough session 12, F19): a late-arriving older value is not last, where an agent
 * reads the latest. `history(subject, { domain, predicate })` is accepted as well as the positional form (F18).
 * Real nats-server, real host process.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ErrorCode, ShardmindError, type ShardmindClient } from '../../client/index.ts';
import { NODE, startOneMiniClient, type OneMiniClient } from './one-mini.ts';

interface Ctx {
  cluster: OneMiniClient;
  client: ShardmindClient;
}

const t = suite<Ctx>('history order');

t.before(async (ctx) => {
  ctx.cluster = await startOneMiniClient({ agent: 'scheduler', node: NODE });
  ctx.client = ctx.cluster.client;
});

t.after(async (ctx) => {
  await ctx.cluster?.stop();
});

t('a late older value of a one predicate sits in world-time order, routed or direct', async (ctx) => {
  const m = ctx.client;
  const base = { subject: 'eve', predicate: 'prefers' } as const;
  await m.remember({ ...base, text: 'Eve starts meetings at 10', object: '10:00' }, { domain: 'calendar' });
  const december = await m.remember({ ...base, text: 'From Dec 1 Eve starts at 8', object: '08:00', validFrom: new Date(Date.now() + 7 * 86_400_000) }, { domain: 'calendar' });
  assert.is(december.status, 'superseded_previous');
  const late = await m.remember({ ...base, text: 'Back in October Eve started at 9', object: '09:00', validFrom: new Date(Date.now() - 30 * 86_400_000) }, { domain: 'calendar' });
  assert.is(late.status, 'recorded_superseded');
  const routed = await m.history('eve', 'prefers', { domain: 'calendar' });
  const direct = await m.history('eve', 'prefers', { domain: 'calendar', direct: true });
  for (const [how, facts] of [['routed', routed], ['direct', direct]] as const) {
    assert.equal(facts.map((f) => f.object), ['09:00', '10:00', '08:00'], how);
    assert.equal(facts.map((f) => f.status), ['superseded', 'superseded', 'active'], how);
  }
});

t('history(subject, { domain, predicate }) reads as the positional form; without a domain it is BAD_REQUEST, not a TypeError', async (ctx) => {
  const m = ctx.client;
  const positional = await m.history('eve', 'prefers', { domain: 'calendar' });
  const named = await m.history('eve', { domain: 'calendar', predicate: 'prefers' });
  assert.equal(named.map((f) => f.id), positional.map((f) => f.id));
  assert.ok(positional.length > 0);
  const every = await m.history('eve', { domain: 'calendar' });
  assert.ok(every.length >= positional.length);
  for (const call of [() => m.history('eve', undefined as never), () => (m.history as (...a: unknown[]) => Promise<unknown>).call(m, 'eve')]) {
    try {
      await call();
      assert.unreachable('no domain');
    } catch (err) {
      assert.instance(err, ShardmindError);
      assert.is((err as ShardmindError).code, ErrorCode.BAD_REQUEST);
      assert.match((err as Error).message, /^domain: required/);
    }
  }
});

t.run();
