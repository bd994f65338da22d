/**
 * The client's shutdown and its bounds, against a real host on a real nats-server: `close()` lets the calls already
 * made finish (they are durable, so they must resolve), gives up at its bound with an error that carries the opId
 * to retry with, and ends with the connection closed even when the server is gone (the process then exits).
 * `deadlineMs` counts a remember's wait in the batcher's queue, and that queue is bounded.
 */
// test-runner: alone (asserts how long close() and a burst take: run by itself, test/run.ts)
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { connect, ErrorCode, OutcomeUnknownError, ShardmindError, type ShardmindClient } from '../../client/index.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';
import { NODE, oneMiniConfig } from './one-mini.ts';

interface Ctx {
  nats: NatsServerProcess;
  hosts: HostCluster;
  checker: ShardmindClient;
}

const close = suite<Ctx>('client close() and its bounds');

close.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  try {
    ctx.hosts = await startHosts({ config: oneMiniConfig(ctx.nats.url) });
    ctx.checker = await connect({ servers: ctx.nats.url, agent: 'checker', node: NODE, direct: true });
  } catch (err) {
    await ctx.hosts?.stop();
    await ctx.nats.destroy();
    throw err;
  }
});

close.after(async (ctx) => {
  ctx.hosts?.host(NODE).kill('SIGCONT');
  await ctx.checker?.close();
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

type Outcome = { ok: true; factId: string } | { ok: false; err: ShardmindError };

function outcome(p: Promise<{ factId: string }>): Promise<Outcome> {
  return p.then(
    (r) => ({ ok: true as const, factId: r.factId }),
    (err: unknown) => {
      if (!(err instanceof ShardmindError)) throw err;
      return { ok: false as const, err };
    },
  );
}

/** How many facts the shard holds about `subject` (a fresh reader, so nothing of the closed client is needed). */
async function factsAbout(ctx: Ctx, subject: string): Promise<number> {
  return (await ctx.checker.recall({ subject, domain: 'email' })).facts.length;
}

for (const direct of [true, false]) {
  close(`close - remembers in flight when close() is called resolve and are stored (${direct ? 'direct' : 'through the router'})`, async (ctx) => {
    const client = await connect({ servers: ctx.nats.url, agent: 'closer', node: NODE, direct });
    await client.remember({ text: 'warm up' }, { domain: 'email' });
    const subject = `closing-${direct}`;
    const write = (i: number) => outcome(client.remember({ text: `close test fact number ${i}`, subject: `${subject}-${i}` }, { domain: 'email' }));
    const onTheWire = Array.from({ length: 20 }, (_, i) => write(i));
    await new Promise((r) => setImmediate(r)); // the first ones are on the wire
    const sameTick = Array.from({ length: 5 }, (_, i) => write(20 + i)); // still in the batcher when close() begins
    const closed = client.close();
    const late = await outcome(client.remember({ text: 'made after close()' }, { domain: 'email' }));
    const outcomes = await Promise.all([...onTheWire, ...sameTick]);
    await closed;
    const failed = outcomes.filter((o) => !o.ok);
    assert.is(failed.length, 0, `rejected: ${failed.map((o) => (o.ok ? '' : `${o.err.code} ${o.err.message}`)).join('; ')}`);
    let stored = 0;
    for (let i = 0; i < 25; i++) stored += await factsAbout(ctx, `${subject}-${i}`);
    assert.is(stored, 25);
    assert.ok(!late.ok && late.err.code === ErrorCode.UNAVAILABLE && /client is closed; not sent/.test(late.err.message), JSON.stringify(late));
    assert.ok(client.connection.isClosed(), 'the connection is closed when close() resolves');
    await client.close(); // twice is harmless
  });
}

close('close - calls unanswered at its bound fail with OutcomeUnknownError and their opId; retried with it, each is applied once', async (ctx) => {
  const client = await connect({ servers: ctx.nats.url, agent: 'impatient', node: NODE, direct: true });
  await client.remember({ text: 'warm up' }, { domain: 'email' });
  const host = ctx.hosts.host(NODE);
  host.kill('SIGSTOP');
  let retried: Outcome[];
  try {
    const opIds = Array.from({ length: 5 }, (_, i) => `close-bound-${Date.now()}-${i}`);
    const fact = (i: number) => ({ text: `a write whose reply close() did not wait for ${i}`, subject: `bound-${i}`, confidence: 0.6 });
    const writes = opIds.map((opId, i) => client.remember(fact(i), { domain: 'email', opId }).then(() => undefined, (err: unknown) => err));
    await new Promise((r) => setImmediate(r));
    const started = Date.now();
    await client.close({ timeoutMs: 300 });
    const tookMs = Date.now() - started;
    const errors = await Promise.all(writes);
    assert.ok(tookMs < 2_500, `close() took ${tookMs} ms`);
    assert.ok(client.connection.isClosed());
    for (const [i, err] of errors.entries()) {
      assert.instance(err, OutcomeUnknownError, String(err));
      const e = err as OutcomeUnknownError;
      assert.is(e.code, ErrorCode.TIMEOUT);
      assert.is(e.retryable, true);
      assert.is(e.opId, opIds[i]);
      assert.ok(e.message.includes(opIds[i]!) && /may or may not have been applied/.test(e.message), e.message);
    }
    host.kill('SIGCONT');
    // What an agent does with the error: the same write again, with its opId, from a new client.
    const again = await connect({ servers: ctx.nats.url, agent: 'impatient', node: NODE, direct: true });
    retried = await Promise.all(opIds.map((opId, i) => outcome(again.remember(fact(i), { domain: 'email', opId }))));
    await again.close();
  } finally {
    host.kill('SIGCONT');
  }
  assert.ok(retried.every((o) => o.ok), JSON.stringify(retried));
  for (const [i, o] of retried.entries()) {
    const f = o.ok ? await ctx.checker.get(o.factId) : undefined;
    assert.is(f?.confirmations, 1, `bound-${i} applied once`);
    assert.is(f?.confidence, 0.6);
    assert.is(await factsAbout(ctx, `bound-${i}`), 1);
  }
});

close('close - with the NATS server gone, the connection ends closed and the agent process exits by itself', async () => {
  const nats = await startNatsServer();
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'close-offline-child.ts'), nats.url], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => void (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => void (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the child did not connect: ${out} ${err}`)), 20_000);
      child.stdout.on('data', () => {
        if (out.includes('ready\n')) {
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then(() => reject(new Error(`the child exited early: ${out} ${err}`)));
    });
    await nats.destroy();
    const stopped = Date.now();
    const code = await Promise.race([exited, new Promise<'alive'>((resolve) => setTimeout(() => resolve('alive'), 20_000))]);
    assert.is(code, 0, `the child should exit by itself; after ${Date.now() - stopped} ms: ${code}; out: ${out} err: ${err.slice(-2000)}`);
    const report = JSON.parse(out.trim().split('\n').pop()!) as { closeMs: number; isClosed: boolean; closedResolved: boolean };
    assert.ok(report.isClosed, JSON.stringify(report));
    assert.ok(report.closedResolved, JSON.stringify(report));
  } finally {
    child.kill('SIGKILL');
    await nats.destroy();
  }
});

close('deadlineMs - a remember waiting in the batcher for a paused shard fails by its deadline, not behind every batch ahead', async (ctx) => {
  const client = await connect({ servers: ctx.nats.url, agent: 'burst', node: NODE, direct: true, deadlineMs: 1_000 });
  await client.remember({ text: 'warm up' }, { domain: 'email' });
  const host = ctx.hosts.host(NODE);
  host.kill('SIGSTOP');
  let took: { ms: number; err: ShardmindError }[];
  try {
    const started = Date.now();
    took = await Promise.all(
      Array.from({ length: 3_000 }, (_, i) =>
        client.remember({ text: `burst fact ${i}` }, { domain: 'email' }).then(
          (): never => assert.unreachable('the shard is paused') as never,
          (err: ShardmindError) => ({ ms: Date.now() - started, err }),
        ),
      ),
    );
  } finally {
    host.kill('SIGCONT');
    await client.close();
  }
  const last = Math.max(...took.map((t) => t.ms));
  // Before, each round of two batches in flight took the whole deadline: the last caller waited ~6 s.
  assert.ok(last <= 1_000 + 700, `last remember failed after ${last} ms`);
  assert.ok(took.every((t) => t.err.retryable && (t.err.code === ErrorCode.TIMEOUT || t.err.code === ErrorCode.UNAVAILABLE)), took[0]!.err.message);
});

close('maxQueuedBytes - past it a remember fails at once, retryable and not sent; rememberMany waits for room instead', async (ctx) => {
  const client = await connect({ servers: ctx.nats.url, agent: 'bounded', node: NODE, direct: true, deadlineMs: 1_500, maxQueuedBytes: 20_000 });
  await client.remember({ text: 'warm up' }, { domain: 'email' });
  const host = ctx.hosts.host(NODE);
  host.kill('SIGSTOP');
  let early: ShardmindError[];
  let all: Promise<unknown>[];
  try {
    const text = 'a fact of about two hundred bytes '.repeat(6);
    const refusedAtOnce: ShardmindError[] = [];
    all = Array.from({ length: 400 }, (_, i) =>
      client.remember({ text: `${text}${i}` }, { domain: 'email' }).catch((err: ShardmindError) => void refusedAtOnce.push(err)),
    );
    await new Promise((r) => setImmediate(r));
    early = [...refusedAtOnce];
  } finally {
    // Resumed right away: the test is about what failed before any reply could come.
    host.kill('SIGCONT');
  }
  let many: unknown[];
  try {
    await Promise.all(all);
    // The same bound with rememberMany: every fact goes, the loop waiting while the queue is full.
    many = await client.rememberMany(Array.from({ length: 400 }, (_, i) => ({ text: `many ${'x'.repeat(200)} ${i}`, subject: `many-${i % 4}` })), { domain: 'email' });
  } finally {
    await client.close();
  }
  // ~330 bytes each: some 60 fit in 20 000 bytes, the rest are refused in the tick they are made.
  assert.ok(early.length >= 300 && early.length < 400, `${early.length} refused at once`);
  assert.ok(early.every((e) => e.code === ErrorCode.UNAVAILABLE && e.retryable && /not sent \(opId /.test(e.message)), early[0]?.message);
  const manyFailed = many.filter((r) => r instanceof ShardmindError);
  assert.is(manyFailed.length, 0, String(manyFailed[0]));
});

close.run();
