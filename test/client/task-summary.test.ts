/**
 * The SDK's task summary (walkthrough session 12, F16): `task.end` answers what the router sends — state, domain,
 * the domains visited, the history with Dates — instead of throwing it away, and `task.get` lets any agent with the
 * id read a task as it is now. Real nats-server, real host process.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { connect, ErrorCode, ShardmindError, type ShardmindClient } from '../../client/index.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';
import { NODE, oneMiniConfig } from './one-mini.ts';

interface Ctx {
  nats: NatsServerProcess;
  hosts: HostCluster;
  planner: ShardmindClient;
  other: ShardmindClient;
}

const t = suite<Ctx>('task summary');

t.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  try {
    ctx.hosts = await startHosts({ config: oneMiniConfig(ctx.nats.url) });
    ctx.planner = await connect({ servers: ctx.nats.url, agent: 'planner', node: NODE });
    ctx.other = await connect({ servers: ctx.nats.url, agent: 'email-agent', node: NODE });
  } catch (err) {
    await ctx.hosts?.stop();
    await ctx.nats.destroy();
    throw err;
  }
});

t.after(async (ctx) => {
  await ctx.planner?.close();
  await ctx.other?.close();
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

t('task.get shows another agent where a task is; task.end answers its summary with Dates', async (ctx) => {
  const started = Date.now();
  const { task } = await ctx.planner.task.begin('reply to Priya about the offsite budget', { domain: 'email' });
  await ctx.planner.task.reroute(task, 'calendar');
  const seen = await ctx.other.task.get(task);
  assert.equal([seen.task, seen.agent, seen.state, seen.domain, seen.visited], [task, 'planner', 'active', 'calendar', ['calendar', 'email']]);
  assert.equal(
    seen.history.map((h) => [h.kind, h.domain, h.from, h.to]),
    [
      ['begin', 'email', undefined, undefined],
      ['reroute', 'calendar', 'email', 'calendar'],
    ],
  );
  assert.instance(seen.history[0]!.at, Date);
  assert.ok(seen.history[0]!.at.getTime() >= started - 5_000 && seen.history[0]!.at.getTime() <= Date.now() + 5_000, String(seen.history[0]!.at));
  const ended = await ctx.planner.task.end(task);
  assert.equal([ended.state, ended.domain, ended.history.at(-1)?.kind], ['ended', 'calendar', 'end']);
  assert.equal(await ctx.planner.task.end(task), ended, 'ending again answers the same summary');
  assert.is((await ctx.other.task.get(task)).state, 'ended');
  try {
    await ctx.other.task.get('t-never-begun');
    assert.unreachable('an unknown task');
  } catch (err) {
    assert.instance(err, ShardmindError);
    assert.is((err as ShardmindError).code, ErrorCode.NOT_FOUND);
  }
});

t.run();
