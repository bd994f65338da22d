/**
 * The client against a real host process on a real nats-server: a remember/recall round trip in both encodings,
 * read-your-writes, a retried write (same opId) applied once, and typed errors.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect as natsConnect, type NatsConnection } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { connect, ErrorCode, ShardmindError, type ShardmindClient } from '../../client/index.ts';
import { decodePayload, encodePayload, logStream, shardSubject } from '../../protocol/index.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';
import { NODE, oneMiniConfig } from './one-mini.ts';

interface Ctx {
  nats: NatsServerProcess;
  hosts: HostCluster;
  nc: NatsConnection;
  client: ShardmindClient;
}

const real = suite<Ctx>('client against a real host');

real.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  try {
    ctx.hosts = await startHosts({ config: oneMiniConfig(ctx.nats.url) });
    ctx.nc = await natsConnect({ servers: ctx.nats.url });
    ctx.client = await connect({ servers: ctx.nats.url, agent: 'agent-a', node: NODE, direct: true });
  } catch (err) {
    await ctx.hosts?.stop();
    await ctx.nats.destroy();
    throw err;
  }
});

real.after(async (ctx) => {
  await ctx.client?.close();
  await ctx.nc?.close();
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

async function expectError(p: Promise<unknown>, code: string, fragment?: string): Promise<ShardmindError> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, ShardmindError);
    const e = err as ShardmindError;
    assert.is(e.code, code, e.message);
    if (fragment) assert.ok(e.message.includes(fragment), e.message);
    return e;
  }
  return assert.unreachable(`expected ${code}`) as never;
}

real('round trip - remember then recall returns the fact with Dates and provenance', async (ctx) => {
  const observedAt = new Date(Date.UTC(2026, 10, 24, 10));
  const r = await ctx.client.remember(
    { text: 'The user prefers PDF attachments over links', subject: 'user', predicate: 'prefers', object: 'pdf', confidence: 0.9, observedAt },
    { domain: 'email' },
  );
  assert.is(r.domain, 'email');
  assert.is(r.status, 'created');
  assert.is(r.duplicate, false);
  assert.ok(r.seq > 0);
  const { facts, seqs } = await ctx.client.recall({ query: 'PDF attachments', domain: 'email' });
  const fact = facts.find((f) => f.id === r.factId);
  assert.ok(fact, `recall should find ${r.factId}`);
  assert.is(fact.text, 'The user prefers PDF attachments over links');
  assert.is(fact.object, 'pdf');
  assert.is(fact.confidence, 0.9);
  assert.instance(fact.observedAt, Date);
  assert.is(fact.observedAt.getTime(), observedAt.getTime());
  assert.equal(fact.source, { agent: 'agent-a', node: NODE });
  assert.ok(fact.effectiveConfidence > 0 && fact.effectiveConfidence <= 0.9);
  assert.ok((seqs['email'] ?? 0) >= r.seq);
});

real('round trip - a JSON client reads what a msgpack client wrote', async (ctx) => {
  const json = await connect({ connection: ctx.nc, agent: 'agent-json', encoding: 'json', direct: true });
  const r = await ctx.client.remember({ text: 'Quarterly reports live in Documents/Finance' }, { domain: 'files' });
  const { facts } = await json.recall({ query: 'quarterly reports', domain: 'files', limit: 5 });
  assert.ok(facts.some((f) => f.id === r.factId));
  assert.ok(facts.every((f) => f.recordedAt instanceof Date));
  await json.close();
});

real('read-your-writes - every write is visible to the next read, and minSeq is honoured by the shard', async (ctx) => {
  for (let i = 0; i < 15; i++) {
    const r = await ctx.client.remember({ text: `standup moved to slot ${i} quokka${i}` }, { domain: 'calendar' });
    assert.is(ctx.client.seenSeq('calendar'), r.seq);
    const { facts } = await ctx.client.recall({ query: `quokka${i}`, domain: 'calendar' });
    assert.equal(facts.map((f) => f.id), [r.factId], `write ${i} visible at once`);
  }
  // A floor the shard has not reached: it waits (limits.minSeqWaitMs, 300 ms here) and says TIMEOUT, retryable.
  const far = ctx.client.seenSeq('calendar') + 1_000;
  const started = Date.now();
  const reply = decodePayload(
    (await ctx.nc.request(shardSubject('calendar', 'recall'), encodePayload({ v: 1, query: 'quokka1', minSeq: { calendar: far } }, 'msgpack'), { timeout: 5_000 })).data,
    'msgpack',
  ) as { error?: { code: string; retryable: boolean } };
  assert.is(reply.error?.code, ErrorCode.TIMEOUT);
  assert.is(reply.error?.retryable, true);
  assert.ok(Date.now() - started >= 250, 'the shard waited for the floor before giving up');
});

real('retry - a write retried with the same opId is applied once', async (ctx) => {
  const jsm = await ctx.nc.jetstreamManager({ checkAPI: false });
  const lastSeq = async () => (await jsm.streams.info(logStream('email'))).state.last_seq;
  const before = await lastSeq();
  const opId = '01JDBQ5N1V4WQ0M6Z9Y8X7W6V5';
  const fact = { text: 'Carol signs her emails with her first name only', subject: 'carol', predicate: 'signs_as', object: 'Carol' };
  const first = await ctx.client.remember(fact, { domain: 'email', opId });
  // The same write again, as a client whose reply was lost would send it — from a second client, too.
  const other = await connect({ connection: ctx.nc, agent: 'agent-a', direct: true });
  const [again, third] = await Promise.all([
    ctx.client.remember(fact, { domain: 'email', opId }),
    other.remember(fact, { domain: 'email', opId }),
  ]);
  await other.close();
  for (const r of [again, third]) {
    assert.is(r.duplicate, true);
    assert.is(r.factId, first.factId);
    assert.is(r.seq, first.seq);
    assert.is(r.status, first.status);
  }
  assert.is(await lastSeq(), before + 1, 'one log entry');
  const history = await ctx.client.history('carol', 'signs_as', { domain: 'email' });
  assert.is(history.length, 1);
  assert.is(history[0]!.confirmations, 1, 'not reinforced by the retries');
});

real('retry - the client retries a write whose replies are lost (host paused), and it is applied once', async (ctx) => {
  const host = ctx.hosts.host(NODE);
  const retries: number[] = [];
  const c = await connect({
    connection: ctx.nc,
    agent: 'agent-r',
    direct: true,
    timeoutMs: 150,
    deadlineMs: 20_000,
    onRetry: (i) => {
      retries.push(i.attempt);
      // Two attempts have gone unanswered; the paused host wakes up and finds three copies of the write queued.
      if (i.attempt === 2) host.kill('SIGCONT');
    },
  });
  host.kill('SIGSTOP');
  let r;
  try {
    r = await c.remember(
      { text: 'The landlord replies fastest to email', subject: 'landlord', predicate: 'replies_fastest_to', object: 'email' },
      { domain: 'email' },
    );
  } finally {
    host.kill('SIGCONT');
    await c.close();
  }
  assert.ok(retries.length >= 2, `retried ${retries.length} times`);
  const history = await ctx.client.history('landlord', 'replies_fastest_to', { domain: 'email' });
  assert.equal(history.map((f) => f.id), [r.factId], 'one fact');
  assert.is(history[0]!.confirmations, 1, 'applied once, not reinforced by the retries');
});

real('forget, retract, history and get - through the client, the domain taken from the fact id', async (ctx) => {
  const a = await ctx.client.remember({ text: 'Bob works in Pacific time', subject: 'bob', predicate: 'prefers', object: 'PT' }, { domain: 'calendar' });
  const got = await ctx.client.get(a.factId);
  assert.is(got?.text, 'Bob works in Pacific time');
  const retracted = await ctx.client.retract(a.factId, { validTo: new Date() });
  assert.is(retracted.status, 'retracted');
  const history = await ctx.client.history('bob', 'prefers', { domain: 'calendar' });
  assert.is(history.find((f) => f.id === a.factId)?.status, 'retracted');
  const forgotten = await ctx.client.forget(a.factId);
  assert.is(forgotten.status, 'forgotten');
  assert.is((await ctx.client.get(a.factId))?.text, '');
  assert.is(await ctx.client.get('calendar:zzzzzzzzzz:9'), undefined);
});

real('errors - BAD_REQUEST, UNKNOWN_DOMAIN and NOT_FOUND are thrown typed, without retries', async (ctx) => {
  const retries: string[] = [];
  const c = await connect({ connection: ctx.nc, agent: 'agent-e', direct: true, onRetry: (i) => retries.push(i.code) });
  const e = await expectError(c.remember({ text: 'x', confidence: 7 }, { domain: 'email' }), ErrorCode.BAD_REQUEST, 'fact.confidence');
  assert.is(e.retryable, false);
  await expectError(c.remember({ text: 'x' }, { domain: 'nope' }), ErrorCode.UNKNOWN_DOMAIN, 'nope');
  await expectError(c.forget('email:zzzzzzzzzz:0'), ErrorCode.NOT_FOUND);
  await expectError(c.recall({ query: 'x', domain: 'email', limit: 0 }), ErrorCode.BAD_REQUEST, 'limit');
  assert.equal(retries, []);
  await c.close();
});

real.run();
