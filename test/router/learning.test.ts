/**
 * The classifier's learned state lives in NATS, not in a router: every router applies every labelled example,
 * a router started later (or restarted) replays them, a retried write teaches once. And an operator's own
 * classifier module replaces the built-in one.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { resolveConfig } from '../../config/index.ts';
import { NaiveBayesClassifier, SharedLearning, createConfiguredClassifier } from '../../router/index.ts';
import shipped from '../../cluster.config.ts';

interface Ctx {
  nats?: NatsServerProcess;
  nc?: NatsConnection;
  dir?: string;
  running: SharedLearning[];
}

const t = suite<Ctx>('shared learning', { running: [] });

async function until(what: string, probe: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  ctx.nc = await connect({ servers: ctx.nats.url });
  ctx.dir = mkdtempSync(join(tmpdir(), 'sm-classifier-module-'));
});

t.after(async (ctx) => {
  for (const l of ctx.running) await l.stop();
  await ctx.nc?.close();
  await ctx.nats?.destroy();
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

const start = async (ctx: Ctx, classifier: NaiveBayesClassifier): Promise<SharedLearning> => {
  const l = await SharedLearning.start(ctx.nc!, classifier, { replicas: 1 });
  ctx.running.push(l);
  return l;
};

t('an example published by one router is learned by every router, once per opId', async (ctx) => {
  const a = new NaiveBayesClassifier(shipped.domains);
  const b = new NaiveBayesClassifier(shipped.domains);
  const la = await start(ctx, a);
  const lb = await start(ctx, b);
  const example = { text: 'the quokka renders are exported nightly', domain: 'files', why: 'explicit_domain' as const };
  await la.publish(example, 'op-1');
  await la.publish(example, 'op-1'); // a retried write: same opId
  await la.publish(example, 'op-2');
  await until('both routers to learn two examples', () => la.applied === 2 && lb.applied === 2);
  assert.is(b.classify('quokka renders')[0]!.domain, 'files');
  assert.is(a.classify('quokka renders')[0]!.domain, 'files');
});

t('a router started later (or restarted) replays what was learned before it', async (ctx) => {
  const late = new NaiveBayesClassifier(shipped.domains);
  const before = late.classify('quokka renders')[0]!.p;
  const l = await start(ctx, late);
  await until('the late router to replay', () => l.applied === 2);
  const after = late.classify('quokka renders');
  assert.is(after[0]!.domain, 'files');
  assert.ok(after[0]!.p > before);
  await l.stop();
  await l.stop(); // idempotent
});

t('classifierModule - an operator module replaces the built-in classifier; a broken one fails loudly', async (ctx) => {
  const good = join(ctx.dir!, 'always-files.mjs');
  writeFileSync(
    good,
    `export function createClassifier(config) {
       const domains = config.domains.map((d) => d.name);
       return {
         domains,
         classify: async () => domains.map((domain) => ({ domain, p: domain === 'files' ? 1 : 0 }))
           .sort((x, y) => y.p - x.p),
         learn() {},
       };
     }\n`,
  );
  const config = (classifierModule?: string) =>
    resolveConfig({ ...shipped, router: { ...shipped.router, ...(classifierModule ? { classifierModule } : {}) } });
  const plugged = await createConfiguredClassifier(config(good));
  assert.is((await plugged.classify('book a meeting on Tuesday'))[0]!.domain, 'files');
  const builtIn = await createConfiguredClassifier(config());
  assert.ok(builtIn instanceof NaiveBayesClassifier);

  const empty = join(ctx.dir!, 'empty.mjs');
  writeFileSync(empty, 'export const nothing = 1;\n');
  try {
    await createConfiguredClassifier(config(empty));
    assert.unreachable('a module without createClassifier must not load');
  } catch (err) {
    assert.match((err as Error).message, /createClassifier/);
  }
  try {
    await createConfiguredClassifier(config(join(ctx.dir!, 'missing.mjs')));
    assert.unreachable('a missing module must not load');
  } catch (err) {
    assert.match((err as Error).message, /cannot load/);
  }
});

t('record: when examples cannot be stored, it never rejects and logs once for many, not once each', async () => {
  // Its own server: the stream is deleted under it (a JetStream outage flooded the hosts' logs, 600 lines in 4 s).
  const nats = await startNatsServer();
  const nc = await connect({ servers: nats.url });
  const lines: string[] = [];
  const learning = await SharedLearning.start(nc, new NaiveBayesClassifier(shipped.domains), { replicas: 1, log: (l) => lines.push(l) });
  try {
    await (await nc.jetstreamManager({ checkAPI: false })).streams.delete('SM_CLASSIFIER');
    const example = { text: 'the quokka renders are exported nightly', domain: 'files', why: 'explicit_domain' as const };
    const settled = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => learning.record(example, `op-${i}`)));
    assert.ok(settled.every((s) => s.status === 'fulfilled'), 'record never rejects');
    const failures = lines.filter((l) => l.includes('could not record'));
    assert.is(failures.length, 1, failures.join('\n'));
    assert.match(failures[0]!, /at most every 10 s/);
  } finally {
    await learning.stop();
    await nc.close();
    await nats.destroy();
  }
});

t.run();
