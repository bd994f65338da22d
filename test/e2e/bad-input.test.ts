/**
 * Bad input at the edge, against a real nats-server and a real host process: malformed msgpack, malformed JSON,
 * wrong field types, an oversized payload and an unknown domain, sent to every `sm.shard.<domain>.<op>` subject; and
 * a header block nats.js cannot decode, sent to every shard, replica, control and heartbeat subject the host serves.
 * Each gets its error code in the request's encoding, the host stays up, and nothing is stored (appliedSeq and the
 * stream's last sequence unchanged, recall finds nothing) — while a good request afterwards still works.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect as natsConnect, createInbox, headers, type Msg, type MsgHdrs, type NatsConnection } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { connect, type ShardmindClient } from '../../client/index.ts';
import {
  CONTENT_TYPE_HEADER,
  ErrorCode,
  JSON_CONTENT_TYPE,
  REPLICA_OPS,
  SHARD_OPS,
  ctlSubject,
  decodePayload,
  encodePayload,
  heartbeatSubject,
  logStream,
  replicaNodeSubject,
  replicaSubject,
  shardSubject,
  type ShardOp,
} from '../../protocol/index.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';
import { MALFORMED_HEADER_BLOCK, publishRaw } from '../harness/raw-publish.ts';
import { DOMAINS, NODE, oneMiniConfig } from '../client/one-mini.ts';

const MAX_PAYLOAD = 8 * 1024;
const CANARY = 'zebracanary';

interface Ctx {
  nats: NatsServerProcess;
  hosts: HostCluster;
  nc: NatsConnection;
  client: ShardmindClient;
  before: Record<string, { applied: number; stream: number; epoch: number }>;
}

const bad = suite<Ctx>('bad input');

bad.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  try {
    ctx.hosts = await startHosts({ config: oneMiniConfig(ctx.nats.url, { maxPayloadBytes: MAX_PAYLOAD }) });
    ctx.nc = await natsConnect({ servers: ctx.nats.url });
    ctx.client = await connect({ connection: ctx.nc, agent: 'tester', direct: true });
    ctx.before = await positions(ctx);
  } catch (err) {
    await ctx.hosts?.stop();
    await ctx.nats.destroy();
    throw err;
  }
});

bad.after(async (ctx) => {
  await ctx.client?.close();
  await ctx.nc?.close();
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

const JSON_HEADERS: MsgHdrs = headers();
JSON_HEADERS.set(CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE);

/**
 * Sends raw bytes, returns the decoded reply (in the encoding the reply says it is in). A NOT_LEADER from the shard
 * guard (the leader's heartbeat was late on a loaded machine) is retried as any client would; nothing else is.
 */
async function raw(ctx: Ctx, subject: string, data: Uint8Array, json: boolean): Promise<Record<string, unknown>> {
  for (let attempt = 1; ; attempt++) {
    const reply = await rawOnce(ctx, subject, data, json);
    const code = (reply['error'] as { code?: string } | undefined)?.code;
    if (code !== ErrorCode.NOT_LEADER || attempt === 20) return reply;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function rawOnce(ctx: Ctx, subject: string, data: Uint8Array, json: boolean): Promise<Record<string, unknown>> {
  const msg = await ctx.nc
    .request(subject, data, { timeout: 5_000, ...(json ? { headers: JSON_HEADERS } : {}) })
    .catch(async (err: Error) => {
      const status = await ctx.hosts.host(NODE).status().catch((e: Error) => e.message);
      throw new Error(`${subject} (${data.length} bytes): ${err.message}; host status ${JSON.stringify(status)}\n${ctx.hosts.stderr()}`);
    });
  const replyIsJson = msg.headers?.get(CONTENT_TYPE_HEADER) === JSON_CONTENT_TYPE;
  assert.is(replyIsJson, json, `${subject}: reply encoding should match the request's`);
  return decodePayload(msg.data, json ? 'json' : 'msgpack') as Record<string, unknown>;
}

function assertError(reply: Record<string, unknown>, code: string, where: string, ...fragments: string[]): void {
  const error = reply['error'] as { code: string; message: string; retryable: boolean } | undefined;
  assert.ok(error, `${where}: expected an error reply, got ${JSON.stringify(reply)}`);
  assert.is(error.code, code, `${where}: ${error.message}`);
  assert.is(error.retryable, false, where);
  assert.is(reply['v'], 1, where);
  for (const f of fragments) assert.ok(error.message.includes(f), `${where}: "${error.message}" should mention "${f}"`);
}

/** Each shard's appliedSeq (from the host) and its stream's last sequence (from JetStream). */
async function positions(ctx: Ctx): Promise<Record<string, { applied: number; stream: number; epoch: number }>> {
  const status = await ctx.hosts.host(NODE).status();
  const jsm = await ctx.nc.jetstreamManager({ checkAPI: false });
  const out: Record<string, { applied: number; stream: number; epoch: number }> = {};
  for (const d of DOMAINS) {
    const shard = status.shards.find((s) => s.domain === d);
    const info = await jsm.streams.info(logStream(d));
    out[d] = { applied: shard?.appliedSeq ?? -1, stream: info.state.last_seq, epoch: shard?.epoch ?? -1 };
  }
  return out;
}

/** A body of the right shape for `op` with one field of the wrong type, and the field the error must name. */
const WRONG_TYPES: Record<ShardOp, { body: object; field: string }[]> = {
  remember: [
    { body: { v: 1, agent: 'tester', fact: { text: CANARY, confidence: 'high' } }, field: 'fact.confidence' },
    { body: { v: 1, agent: 'tester', fact: { text: 42 } }, field: 'fact.text' },
    { body: { v: 1, agent: 'tester', fact: { text: CANARY, observedAt: 'yesterday' } }, field: 'fact.observedAt' },
    { body: { v: 1, agent: ['tester'], fact: { text: CANARY } }, field: 'agent' },
    { body: { v: 2, agent: 'tester', fact: { text: CANARY } }, field: 'v' },
    { body: { v: 1, agent: 'tester', opId: 'has spaces', fact: { text: CANARY } }, field: 'opId' },
    // More than the clock skew ahead of the shard's clock: it would never decay (walkthrough-session10 finding 3).
    { body: { v: 1, agent: 'tester', fact: { text: CANARY, observedAt: '2099-01-01T00:00:00Z' } }, field: 'fact.observedAt' },
  ],
  remember_batch: [
    { body: { v: 1, agent: ['tester'], items: [{ fact: { text: CANARY } }] }, field: 'agent' },
    { body: { v: 1, agent: 'tester', items: { fact: { text: CANARY } } }, field: 'items' },
    { body: { v: 1, agent: 'tester', items: [] }, field: 'items' },
    { body: { v: 1, agent: 'tester', items: Array.from({ length: 257 }, () => ({ fact: { text: 'x' } })) }, field: 'items' },
    { body: { v: 2, agent: 'tester', items: [{ fact: { text: CANARY } }] }, field: 'v' },
  ],
  recall: [
    { body: { v: 1, query: 42 }, field: 'query' },
    { body: { v: 1, query: CANARY, limit: 'ten' }, field: 'limit' },
    { body: { v: 1, query: CANARY, minSeq: { email: -1 } }, field: 'minSeq.email' },
  ],
  recall_batch: [
    { body: { v: 1, recalls: { query: CANARY } }, field: 'recalls' },
    { body: { v: 1, recalls: [] }, field: 'recalls' },
    { body: { v: 1, recalls: Array.from({ length: 65 }, () => ({ query: CANARY })) }, field: 'recalls' },
    { body: { v: 2, recalls: [{ query: CANARY }] }, field: 'v' },
  ],
  forget: [
    { body: { v: 1, agent: 'tester', factId: 7 }, field: 'factId' },
    { body: { v: 1, factId: 'email:1:0' }, field: 'agent' },
  ],
  retract: [
    { body: { v: 1, agent: 'tester', factId: 'email:1:0', validTo: 'soon' }, field: 'validTo' },
    { body: { v: 1, agent: 'tester', factId: { id: 1 } }, field: 'factId' },
  ],
  history: [
    { body: { v: 1, subject: ['user'] }, field: 'subject' },
    { body: { v: 1, subject: 'user', predicate: 3 }, field: 'predicate' },
  ],
  get: [
    { body: { v: 1, factId: true }, field: 'factId' },
    { body: { v: 1 }, field: 'factId' },
  ],
  entity: [
    { body: { v: 1, agent: 'tester', entity: { id: 'bob', aliases: 'Bob' } }, field: 'entity.aliases' },
    { body: { v: 1, agent: 'tester', entity: { id: 'bob', attributes: { tz: { zone: 'PT' } } } }, field: 'entity.attributes.tz' },
    { body: { v: 1, agent: 'tester', entity: { name: 'Bob' } }, field: 'entity.id' },
    { body: { v: 1, entity: { id: 'bob' } }, field: 'agent' },
  ],
  lookup: [
    { body: { v: 1, entity: 7 }, field: 'entity' },
    { body: { v: 1 }, field: 'entity' },
  ],
};

/** A valid body for each op, for the unknown-domain case. */
const VALID: Record<ShardOp, object> = {
  remember: { v: 1, agent: 'tester', fact: { text: CANARY } },
  remember_batch: { v: 1, agent: 'tester', items: [{ opId: 'canary-1', fact: { text: CANARY } }] },
  recall: { v: 1, query: CANARY },
  recall_batch: { v: 1, recalls: [{ query: CANARY }] },
  forget: { v: 1, agent: 'tester', factId: 'nope:1:0' },
  retract: { v: 1, agent: 'tester', factId: 'nope:1:0' },
  history: { v: 1, subject: 'user' },
  get: { v: 1, factId: 'nope:1:0' },
  entity: { v: 1, agent: 'tester', entity: { id: 'bob' } },
  lookup: { v: 1, entity: 'bob' },
};

const each = (fn: (domain: string, op: ShardOp) => Promise<void>) => async () => {
  for (const d of DOMAINS) for (const op of SHARD_OPS) await fn(d, op);
};

bad('malformed msgpack - BAD_REQUEST on every shard subject', async (ctx) => {
  const garbage = [new Uint8Array([0x92, 0x01]), new Uint8Array([0x01, 0x02, 0x03]), new Uint8Array([0xc1]), new Uint8Array(0)];
  await each(async (d, op) => {
    for (const g of garbage) {
      assertError(await raw(ctx, shardSubject(d, op), g, false), ErrorCode.BAD_REQUEST, `${d}.${op} [${g.join(',')}]`);
    }
  })();
});

bad('malformed JSON - BAD_REQUEST in JSON on every shard subject', async (ctx) => {
  const texts = ['{"v":1,', 'not json at all', '[1,2', '\u0000\u00ff'];
  await each(async (d, op) => {
    for (const t of texts) {
      const reply = await raw(ctx, shardSubject(d, op), new TextEncoder().encode(t), true);
      assertError(reply, ErrorCode.BAD_REQUEST, `${d}.${op} ${JSON.stringify(t)}`);
    }
    // Valid JSON that is not a request object.
    const reply = await raw(ctx, shardSubject(d, op), new TextEncoder().encode('"hello"'), true);
    assertError(reply, ErrorCode.BAD_REQUEST, `${d}.${op} "hello"`, 'body');
  })();
});

bad('wrong field types - BAD_REQUEST naming the field, in msgpack and in JSON', async (ctx) => {
  await each(async (d, op) => {
    for (const { body, field } of WRONG_TYPES[op]) {
      for (const json of [false, true]) {
        const reply = await raw(ctx, shardSubject(d, op), encodePayload(body, json ? 'json' : 'msgpack'), json);
        assertError(reply, ErrorCode.BAD_REQUEST, `${d}.${op} ${JSON.stringify(body)}`, `${field}:`);
      }
    }
  })();
});

bad('oversized payload - TOO_LARGE on every shard subject, even when otherwise valid', async (ctx) => {
  await each(async (d, op) => {
    const body = { ...VALID[op], padding: 'x'.repeat(MAX_PAYLOAD) };
    for (const json of [false, true]) {
      const data = encodePayload(body, json ? 'json' : 'msgpack');
      assert.ok(data.length > MAX_PAYLOAD);
      assertError(await raw(ctx, shardSubject(d, op), data, json), ErrorCode.TOO_LARGE, `${d}.${op}`, `limit is ${MAX_PAYLOAD}`);
    }
  })();
});

bad('unknown domain - UNKNOWN_DOMAIN on every op of sm.shard.nope, an unknown op is BAD_REQUEST', async (ctx) => {
  for (const op of SHARD_OPS) {
    for (const json of [false, true]) {
      const reply = await raw(ctx, shardSubject('nope', op), encodePayload(VALID[op], json ? 'json' : 'msgpack'), json);
      assertError(reply, ErrorCode.UNKNOWN_DOMAIN, `nope.${op}`, 'nope');
    }
  }
  for (const d of DOMAINS) {
    assertError(await raw(ctx, shardSubject(d, 'explode'), encodePayload({ v: 1 }, 'msgpack'), false), ErrorCode.BAD_REQUEST, `${d}.explode`, 'explode');
  }
});

/** Every control op a host serves (`actors/control.ts`), with a body that would act if its headers were readable. */
const CONTROL: Record<string, object> = {
  status: { v: 1 },
  ping: { v: 1 },
  digest: { v: 1, domain: 'email' },
  follow: { v: 1, domain: 'email' },
  unfollow: { v: 1, domain: 'email' },
  handoff: { v: 1, domain: 'email', to: NODE },
  compact: { v: 1, domain: 'email' },
  backup: { v: 1, domain: 'email' },
  prune: { v: 1, domain: 'email', inactiveDays: 0 },
};

/**
 * Sends `data` with the malformed header block through a raw TCP client, the reply to a fresh inbox, and returns the
 * decoded reply (msgpack: the request's encoding header is unreadable). A NOT_LEADER from the shard guard is retried,
 * as in `raw`.
 */
async function malformed(ctx: Ctx, subject: string, data: Uint8Array): Promise<Record<string, unknown>> {
  for (let attempt = 1; ; attempt++) {
    const inbox = createInbox();
    const sub = ctx.nc.subscribe(inbox, { max: 1 });
    const first = (async (): Promise<Msg | undefined> => {
      for await (const m of sub) return m;
      return undefined;
    })();
    await ctx.nc.flush();
    await publishRaw(ctx.nats.url, subject, inbox, MALFORMED_HEADER_BLOCK, data);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), 5_000)));
    const msg = await Promise.race([first, timeout]);
    clearTimeout(timer);
    sub.unsubscribe();
    if (msg === undefined) {
      throw new Error(`${subject} with malformed headers: no reply within 5 s (host running: ${ctx.hosts.host(NODE).running})\n${ctx.hosts.stderr()}`);
    }
    const reply = decodePayload(msg.data, 'msgpack') as Record<string, unknown>;
    const code = (reply['error'] as { code?: string } | undefined)?.code;
    if (code !== ErrorCode.NOT_LEADER || attempt === 20) return reply;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The host process is alive and its control subject still answers: the connection did not go deaf. */
async function assertListening(ctx: Ctx, after: string): Promise<void> {
  assert.ok(ctx.hosts.host(NODE).running, `the host process exited after ${after}:\n${ctx.hosts.stderr()}`);
  const ping = await ctx.nc.request(ctlSubject(NODE, 'ping'), encodePayload({ v: 1 }, 'msgpack'), { timeout: 3_000 }).catch((err: Error) => {
    throw new Error(`no ping reply after ${after} (${err.message}); host running: ${ctx.hosts.host(NODE).running}\n${ctx.hosts.stderr()}`);
  });
  assert.is((decodePayload(ping.data, 'msgpack') as { node: string }).node, NODE, after);
}

bad('malformed headers - BAD_REQUEST on every shard, replica and control subject; the host keeps answering', async (ctx) => {
  const families: { subject: string; body: object }[] = [];
  for (const d of DOMAINS) {
    for (const op of SHARD_OPS) families.push({ subject: shardSubject(d, op), body: VALID[op] });
    for (const op of REPLICA_OPS) {
      families.push({ subject: replicaSubject(d, op), body: VALID[op] }, { subject: replicaNodeSubject(d, op, NODE), body: VALID[op] });
    }
  }
  for (const [op, body] of Object.entries(CONTROL)) families.push({ subject: ctlSubject(NODE, op), body });

  for (const { subject, body } of families) {
    const reply = await malformed(ctx, subject, encodePayload(body, 'msgpack'));
    assertError(reply, ErrorCode.BAD_REQUEST, `${subject} with malformed headers`, 'headers are malformed');
    await assertListening(ctx, `malformed headers on ${subject}`);
  }
  // A domain no shard serves: the shard guard answers it, in msgpack.
  const unknown = await malformed(ctx, shardSubject('nope', 'recall'), encodePayload(VALID.recall, 'msgpack'));
  assertError(unknown, ErrorCode.UNKNOWN_DOMAIN, 'nope.recall with malformed headers', 'nope');
  await assertListening(ctx, 'malformed headers on sm.shard.nope.recall');

  // No reply subject: nothing to answer, and nothing breaks. Heartbeats carry no reply either (and name a domain,
  // known or not).
  const noReply = [...families.map((f) => f.subject), shardSubject('nope', 'recall'), heartbeatSubject('email'), heartbeatSubject('no-such-domain')];
  for (const subject of noReply) await publishRaw(ctx.nats.url, subject, '', MALFORMED_HEADER_BLOCK, encodePayload({ v: 1 }, 'msgpack'));
  await assertListening(ctx, 'malformed headers without a reply subject');

  // The same subjects still answer good requests: every shard op a request it refuses for its body (so nothing is
  // stored), reads an answer, control its status.
  for (const d of DOMAINS) {
    for (const op of SHARD_OPS) {
      const { body, field } = WRONG_TYPES[op][0]!;
      assertError(await raw(ctx, shardSubject(d, op), encodePayload(body, 'msgpack'), false), ErrorCode.BAD_REQUEST, `${d}.${op} after`, `${field}:`);
    }
    for (const subject of [replicaSubject(d, 'recall'), replicaNodeSubject(d, 'recall', NODE), shardSubject(d, 'recall')]) {
      const reply = await raw(ctx, subject, encodePayload({ v: 1, query: CANARY }, 'msgpack'), false);
      assert.equal(reply['facts'], [], `${subject} after: ${JSON.stringify(reply)}`);
    }
  }
  const status = await ctx.hosts.host(NODE).status();
  assert.equal(status.shards.map((s) => [s.domain, s.state]).sort(), DOMAINS.map((d) => [d, 'leading']), 'every shard still leads here');
});

bad('an observedAt far ahead of the shard clock - the batch item is refused by itself, before anything is appended', async (ctx) => {
  for (const d of DOMAINS) {
    for (const json of [false, true]) {
      const body = { v: 1, agent: 'tester', items: [{ opId: `future-${d}-${json}`, fact: { text: CANARY, observedAt: '2099-01-01T00:00:00Z' } }] };
      const reply = await raw(ctx, shardSubject(d, 'remember_batch'), encodePayload(body, json ? 'json' : 'msgpack'), json);
      const results = reply['results'] as { error?: { code: string; message: string } }[] | undefined;
      assert.is(results?.[0]?.error?.code, ErrorCode.BAD_REQUEST, `${d} ${JSON.stringify(reply)}`);
      assert.ok(results![0]!.error!.message.includes('items[0].fact.observedAt:'), results![0]!.error!.message);
    }
  }
});

bad('afterwards - the host is up, nothing was stored, and a good request still works', async (ctx) => {
  const ping = decodePayload((await ctx.nc.request(ctlSubject(NODE, 'ping'), encodePayload({ v: 1 }, 'msgpack'), { timeout: 2_000 })).data, 'msgpack');
  assert.is((ping as { node: string }).node, NODE);
  assert.ok(ctx.hosts.host(NODE).running);

  const after = await positions(ctx);
  assert.equal(after, ctx.before, 'no shard applied or logged anything');
  for (const d of DOMAINS) {
    const found = await ctx.client.recall({ query: CANARY, domain: d, includeInactive: true });
    assert.equal(found.facts, [], `${d} recall of the canary`);
  }

  // The positive control: the same host, a good write, found at once.
  const r = await ctx.client.remember({ text: `${CANARY} after the storm` }, { domain: 'email' });
  const found = await ctx.client.recall({ query: CANARY, domain: 'email' });
  assert.equal(found.facts.map((f) => f.id), [r.factId]);
  const final = await positions(ctx);
  assert.is(final['email']!.applied, ctx.before['email']!.applied + 1);
  assert.is(final['email']!.stream, ctx.before['email']!.stream + 1);
});

bad.run();
