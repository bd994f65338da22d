/**
 * `memory.watch` with a subject, and async handlers (walkthrough session 12, F2, F3, F15): a subject watcher hears a
 * retract and a forget of that subject's facts, not only its remembers; the feed names the subject as stored, so a
 * fact written by alias reaches a watcher of the entity's id (and carries the alias as `subjectAsWritten`); an async
 * handler that rejects reaches `onError` and the process and the feed go on. Real nats-server, real host process.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { connect, ShardmindError, type Change, type ChangeOp, type ChangeStatus, type ShardmindClient } from '../../client/index.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';
import { NODE, oneMiniConfig } from './one-mini.ts';

interface Ctx {
  nats: NatsServerProcess;
  hosts: HostCluster;
  writer: ShardmindClient;
  watcher: ShardmindClient;
}

const t = suite<Ctx>('watch by subject');

t.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  try {
    ctx.hosts = await startHosts({ config: oneMiniConfig(ctx.nats.url) });
    ctx.writer = await connect({ servers: ctx.nats.url, agent: 'email-agent', node: NODE });
    ctx.watcher = await connect({ servers: ctx.nats.url, agent: 'planner', node: NODE });
  } catch (err) {
    await ctx.hosts?.stop();
    await ctx.nats.destroy();
    throw err;
  }
});

t.after(async (ctx) => {
  await ctx.writer?.close();
  await ctx.watcher?.close();
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

t('a subject watcher hears the retract and the forget of that subject’s facts, with subject and predicate', async (ctx) => {
  const aboutUser: Change[] = [];
  const everything: Change[] = [];
  const stops = [ctx.watcher.watch({ subject: 'user' }, (c) => aboutUser.push(c)), ctx.watcher.watch({ domain: 'email' }, (c) => everything.push(c))];
  await ctx.watcher.connection.flush();
  try {
    const signature = await ctx.writer.remember({ text: 'The user signs emails J.', subject: 'user', predicate: 'signature', object: 'J.' }, { domain: 'email' });
    await ctx.writer.retract(signature.factId);
    const phone = await ctx.writer.remember({ text: 'The user phone is 555-0100', subject: 'user', predicate: 'phone', object: '555-0100' }, { domain: 'email' });
    await ctx.writer.forget(phone.factId);
    const other = await ctx.writer.remember({ text: 'Bob phone is 555-0199', subject: 'bob', predicate: 'phone', object: '555-0199' }, { domain: 'email' });
    await ctx.writer.forget(other.factId);
    await until('the last forget', () => everything.find((c) => c.status === 'forgotten' && c.factId === other.factId));
    // Typed as the closed sets (F4): a switch over them is checked by the compiler.
    const kinds: [ChangeOp, ChangeStatus][] = aboutUser.map((c) => [c.op, c.status]);
    assert.equal(kinds.map(([op]) => op), ['assert', 'retract', 'assert', 'forget']);
    const seen = aboutUser.map((c) => [c.op, c.status, c.factId, c.subject, c.predicate]);
    assert.equal(seen, [
      ['assert', 'created', signature.factId, 'user', 'signature'],
      ['retract', 'retracted', signature.factId, 'user', 'signature'],
      ['assert', 'created', phone.factId, 'user', 'phone'],
      ['forget', 'forgotten', phone.factId, 'user', 'phone'],
    ]);
    const bobsForget = everything.find((c) => c.status === 'forgotten' && c.factId === other.factId)!;
    assert.equal([bobsForget.subject, bobsForget.predicate], ['bob', 'phone']);
  } finally {
    for (const stop of stops) stop();
  }
});

t('the feed names the subject as stored: a fact written by alias reaches a watcher of the entity’s id', async (ctx) => {
  await ctx.writer.entity({ id: 'bob-smith', name: 'Bob Smith', aliases: ['Bob', 'bob@example.com'] }, { domain: 'calendar' });
  const byId: Change[] = [];
  const byAlias: Change[] = [];
  const stops = [
    ctx.watcher.watch({ domain: 'calendar', subject: 'bob-smith' }, (c) => byId.push(c)),
    ctx.watcher.watch({ domain: 'calendar', subject: 'Bob' }, (c) => byAlias.push(c)),
  ];
  await ctx.watcher.connection.flush();
  try {
    const written = await ctx.writer.remember(
      { text: 'Bob works in Berlin time', subject: 'Bob', predicate: 'timezone', object: 'Europe/Berlin' },
      { domain: 'calendar' },
    );
    const stored = await ctx.writer.get(written.factId);
    assert.is(stored?.subject, 'bob-smith', 'the store resolved the alias');
    const event = await until('the event by id', () => byId.find((c) => c.factId === written.factId));
    assert.equal([event.subject, event.subjectAsWritten, event.predicate], ['bob-smith', 'Bob', 'timezone']);
    await until('the event by alias', () => byAlias.find((c) => c.factId === written.factId));
    await ctx.writer.forget(written.factId);
    const forgotten = await until('the forget by id', () => byId.find((c) => c.status === 'forgotten'));
    assert.is(forgotten.subject, 'bob-smith');
  } finally {
    for (const stop of stops) stop();
  }
});

t('an async handler that rejects reaches onError; the process and the feed go on', async (ctx) => {
  const errors: unknown[] = [];
  const reacted: string[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  process.on('unhandledRejection', onUnhandled);
  const stop = ctx.watcher.watch({ domain: 'files', onError: (e) => errors.push(e) }, async (c) => {
    if (c.agent !== 'email-agent') return;
    reacted.push(c.text ?? '');
    // A bug in the reaction: the server refuses the confidence.
    await ctx.watcher.remember({ text: `follow-up: ${c.text}`, confidence: 2 }, { domain: 'files' });
  });
  await ctx.watcher.connection.flush();
  try {
    await ctx.writer.remember({ text: 'saved the offsite budget sheet' }, { domain: 'files' });
    await until('the error', () => (errors.length > 0 ? true : undefined));
    assert.instance(errors[0], ShardmindError);
    assert.match((errors[0] as Error).message, 'fact.confidence');
    await ctx.writer.remember({ text: 'saved the agenda' }, { domain: 'files' });
    await until('the second reaction', () => (errors.length > 1 ? true : undefined));
    assert.equal(reacted, ['saved the offsite budget sheet', 'saved the agenda']);
    assert.equal(unhandled, [], 'no rejection went unhandled');
  } finally {
    stop();
    process.off('unhandledRejection', onUnhandled);
  }
});

t.run();
