/**
 * A remember in a task, through the router, when the task's bookkeeping fails after the fact is stored (the task
 * bucket unreachable): the write is reported written, with a warning that its task note failed — never as a failure,
 * which an agent would answer by writing again with a new opId (a second observation of the same fact). Real host,
 * real nats-server; the bucket's stream is deleted under the router.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect as natsConnect, type NatsConnection } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { connect, ShardmindError, type ShardmindClient } from '../../client/index.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';
import { NODE, oneMiniConfig } from './one-mini.ts';

interface Ctx {
  nats: NatsServerProcess;
  hosts: HostCluster;
  nc: NatsConnection;
  client: ShardmindClient;
}

const note = suite<Ctx>('a remember whose task note fails');

note.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  try {
    ctx.hosts = await startHosts({ config: oneMiniConfig(ctx.nats.url) });
    ctx.nc = await natsConnect({ servers: ctx.nats.url });
    ctx.client = await connect({ servers: ctx.nats.url, agent: 'tasked', node: NODE });
  } catch (err) {
    await ctx.hosts?.stop();
    await ctx.nats.destroy();
    throw err;
  }
});

note.after(async (ctx) => {
  await ctx.client?.close();
  await ctx.nc?.close();
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

note('through the router, a stored fact whose task note failed is reported written with a warning, alone and batched', async (ctx) => {
  const task = await ctx.client.task.begin('email things', { domain: 'email' });
  const jsm = await ctx.nc.jetstreamManager({ checkAPI: false });
  await jsm.streams.delete('KV_sm_tasks');
  const settle = (p: Promise<{ factId: string; warning?: string }>) =>
    p.then(
      (r) => r,
      (err: unknown) => {
        if (err instanceof ShardmindError) return err;
        throw err;
      },
    );
  // Three at once go as one remember_batch; the fourth alone as a plain remember.
  const batched = await Promise.all(
    [0, 1, 2].map((i) => settle(ctx.client.remember({ text: `noted in a task ${i}`, subject: `task-note-${i}` }, { domain: 'email', task: task.task }))),
  );
  const alone = await settle(ctx.client.remember({ text: 'noted in a task alone', subject: 'task-note-alone' }, { domain: 'email', task: task.task }));
  for (const r of [...batched, alone]) {
    assert.not.instance(r, ShardmindError, String(r));
    const w = (r as { warning?: string }).warning ?? '';
    // The bucket's own retries outlast the router's wait for the note: the reply goes first, the note goes on.
    assert.ok(w.includes(task.task) && /stored, but noting it in the task (did not finish within|failed)/.test(w), w);
  }
  const reader = await connect({ servers: ctx.nats.url, agent: 'reader', node: NODE, direct: true });
  try {
    for (const subject of ['task-note-0', 'task-note-1', 'task-note-2', 'task-note-alone']) {
      const { facts } = await reader.recall({ subject, domain: 'email' });
      assert.is(facts.length, 1, subject);
      assert.is(facts[0]!.confirmations, 1, `${subject} stored once`);
    }
  } finally {
    await reader.close();
  }
  // And the router says so in its log when the note's retries give up (once for all of them, at most every 10 s).
  const deadline = Date.now() + 15_000;
  while (!/remembered fact\(s\) stored but not noted in their task; last: task .*UNAVAILABLE/.test(ctx.hosts.stderr())) {
    assert.ok(Date.now() < deadline, `no log line: ${ctx.hosts.stderr().slice(-1500)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

note.run();
