/**
 * Read-your-writes across agents (walkthrough session 13, F7): agent A hands `client.seqs()` to agent B with its
 * work, and B's recall, history and get with `minSeq` set to it wait on the shard until A's writes are applied. The
 * reads here are made *before* A's write lands (the floor names the position A is about to write), so an answer
 * that did not wait misses the fact. Real nats-server, real host process.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, ErrorCode, ShardmindError, type ShardmindClient } from '../../client/index.ts';
import { NODE, startOneMiniClient, type OneMiniClient } from './one-mini.ts';

interface Ctx {
  cluster: OneMiniClient;
  a: ShardmindClient;
  b: ShardmindClient;
}

const t = suite<Ctx>('cross-agent seqs');

t.before(async (ctx) => {
  ctx.cluster = await startOneMiniClient({ agent: 'agent-a', node: NODE });
  ctx.a = ctx.cluster.client;
  ctx.b = await connect({ servers: ctx.cluster.nats.url, agent: 'agent-b', node: NODE });
});

t.after(async (ctx) => {
  await ctx.b?.close().catch(() => undefined);
  await ctx.cluster?.stop();
});

/** A's next write in `domain` lands at the current position + 1 (one writer, one fact per write). */
function nextPosition(a: ShardmindClient, domain: string): Record<string, number> {
  const seen = a.seqs();
  return { ...seen, [domain]: (seen[domain] ?? 0) + 1 };
}

/** Runs `read` now and A's `write` 100 ms later (within the shard's 300 ms minSeq wait). */
async function readBeforeWrite<T>(read: () => Promise<T>, write: () => Promise<unknown>): Promise<T> {
  const answer = read();
  await new Promise((r) => setTimeout(r, 100));
  await write();
  return answer;
}

t('seqs() names every domain the client wrote to, at its latest position', async ({ a }) => {
  const mail = await a.remember({ text: 'The user prefers PDF attachments over links' }, { domain: 'email' });
  const cal = await a.remember({ text: 'The user never takes meetings before 10' }, { domain: 'calendar' });
  const seen = a.seqs();
  assert.is(seen['email'], mail.seq);
  assert.is(seen['calendar'], cal.seq);
  // A copy: changing it changes nothing in the client.
  seen['email'] = 0;
  assert.is(a.seqs()['email'], mail.seq);
});

t('recall with another agent\'s floor waits for its write: direct, routed with the domain, routed without', async ({ a, b }) => {
  for (const [how, query] of [
    ['direct', { domain: 'email', direct: true }],
    ['routed', { domain: 'email' }],
    ['routed, the router picks', {}],
  ] as const) {
    const word = `zebrafinch${how.length}`;
    const floor = nextPosition(a, 'email');
    const result = await readBeforeWrite(
      () => b.recall({ ...query, query: word, minSeq: floor }),
      () => a.remember({ text: `The ${word} report goes out on Fridays` }, { domain: 'email' }),
    );
    assert.equal(result.facts.map((f) => f.text), [`The ${word} report goes out on Fridays`], how);
  }
});

t('history and get take the floor too', async ({ a, b }) => {
  const floor = nextPosition(a, 'calendar');
  const history = await readBeforeWrite(
    () => b.history('dana', 'prefers', { domain: 'calendar', minSeq: floor }),
    () => a.remember({ text: 'Dana prefers mornings', subject: 'dana', predicate: 'prefers', object: 'mornings' }, { domain: 'calendar' }),
  );
  assert.equal(history.map((f) => f.object), ['mornings']);

  const written = await a.remember({ text: 'Files go to the shared drive' }, { domain: 'files' });
  const fact = await b.get(written.factId, { minSeq: a.seqs() });
  assert.is(fact?.text, 'Files go to the shared drive');
});

t('a floor past what will be written fails retryable, naming the wait', async ({ a, b }) => {
  const far = { email: (a.seqs()['email'] ?? 0) + 1000 };
  const err = await b.recall({ query: 'anything', domain: 'email', direct: true, minSeq: far }).catch((e: unknown) => e);
  assert.instance(err, ShardmindError);
  assert.ok((err as ShardmindError).retryable, String(err));
});

t('a malformed floor is refused in the client, naming the field', async ({ b }) => {
  for (const [minSeq, field] of [
    [{ email: -1 }, 'minSeq.email'],
    [{ email: 1.5 }, 'minSeq.email'],
    [{ 'No Such Domain!': 1 }, 'minSeq key'],
    [7, 'minSeq'],
  ] as const) {
    const err = await b.recall({ query: 'x', minSeq: minSeq as never }).catch((e: unknown) => e);
    assert.instance(err, ShardmindError, JSON.stringify(minSeq));
    assert.is((err as ShardmindError).code, ErrorCode.BAD_REQUEST);
    assert.ok((err as ShardmindError).message.startsWith(field), (err as ShardmindError).message);
    const viaGet = await b.get('email:1:0', { minSeq: minSeq as never }).catch((e: unknown) => e);
    assert.is((viaGet as ShardmindError).code, ErrorCode.BAD_REQUEST, JSON.stringify(minSeq));
  }
});

t.run();
