/**
 * A JSON client's content type, against a real nats-server and host (walkthrough-session11 finding 1): the header's
 * name is matched in any case (`Content-Type` is what HTTP habits and MIME-canonicalising NATS clients send), and a
 * JSON body sent without the header is refused with a BAD_REQUEST in JSON, the one form its sender reads, that says
 * to send the header — on the router's, the shard's and the replica's subjects, storing nothing.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { headers, type MsgHdrs } from 'nats';
import { CONTENT_TYPE_HEADER, ErrorCode, JSON_CONTENT_TYPE, memSubject, replicaSubject, shardSubject } from '../../protocol/index.ts';
import { startRawOneMini, stopRawOneMini, type RawOneMini } from '../harness/router-ready.ts';
import { NODE } from '../client/one-mini.ts';

const json = suite<RawOneMini>('json content type');

json.before(async (ctx) => void Object.assign(ctx, await startRawOneMini()));
json.after(async (ctx) => stopRawOneMini(ctx));

function headerNamed(name: string): MsgHdrs {
  const h = headers();
  h.set(name, `${JSON_CONTENT_TYPE}; charset=utf-8`);
  return h;
}

interface Answer {
  readonly contentType: string;
  readonly body: Record<string, unknown>;
}

/**
 * Sends `body` as JSON text with `h` and parses the reply as a JSON-only client would: a reply that is not JSON fails
 * the test with its first bytes. A NOT_LEADER from the shard guard (a late heartbeat on a loaded box) is retried.
 */
async function send(ctx: RawOneMini, subject: string, body: object, h: MsgHdrs | undefined): Promise<Answer> {
  for (let attempt = 1; ; attempt++) {
    const msg = await ctx.nc.request(subject, new TextEncoder().encode(JSON.stringify(body)), { timeout: 5_000, ...(h ? { headers: h } : {}) });
    const text = new TextDecoder().decode(msg.data);
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      assert.unreachable(`${subject}: the reply is not JSON: ${JSON.stringify(text.slice(0, 60))}`);
      throw new Error('unreachable');
    }
    const code = (parsed['error'] as { code?: string } | undefined)?.code;
    if (code === ErrorCode.NOT_LEADER && attempt < 20) {
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    return { contentType: msg.headers?.get(CONTENT_TYPE_HEADER) ?? '', body: parsed };
  }
}

async function applied(ctx: RawOneMini, domain: string): Promise<number> {
  return (await ctx.hosts.host(NODE).shard(domain))?.appliedSeq ?? -1;
}

json('the content-type header name is matched in any case, on sm.mem, sm.shard and sm.replica', async (ctx) => {
  const spellings = { 'Content-Type': 'alpha', 'CONTENT-TYPE': 'bravo', 'content-Type': 'charlie' };
  for (const [name, word] of Object.entries(spellings)) {
    const h = headerNamed(name);
    // nats.js keeps the name as given, so the request really carries it so spelled.
    assert.is(h.get(CONTENT_TYPE_HEADER), '', `${name}: not stored lower-case`);
    const text = `Dana prefers ${word} mornings`;
    const wrote = await send(ctx, memSubject('remember'), { v: 1, agent: 'py', domain: 'email', fact: { text } }, h);
    assert.is(wrote.contentType, JSON_CONTENT_TYPE, `${name}: remember's reply is JSON`);
    assert.is(wrote.body['status'], 'created', `${name}: ${JSON.stringify(wrote.body)}`);
    const direct = await send(ctx, shardSubject('email', 'recall'), { v: 1, query: text, minSeq: { email: wrote.body['seq'] } }, h);
    assert.ok(Array.isArray(direct.body['facts']), `${name}: ${JSON.stringify(direct.body)}`);
    assert.ok((direct.body['facts'] as { text: string }[]).some((f) => f.text === text), `${name}: the shard recalls it`);
    const routed = await send(ctx, memSubject('recall'), { v: 1, query: text, domain: 'email' }, h);
    assert.ok((routed.body['facts'] as { text: string }[]).some((f) => f.text === text), `${name}: the router recalls it`);
    const replica = await send(ctx, replicaSubject('email', 'recall'), { v: 1, query: text }, h);
    assert.ok(Array.isArray(replica.body['facts']), `${name}: replica: ${JSON.stringify(replica.body)}`);
  }
});

json('a JSON body without the header - BAD_REQUEST in JSON saying to send it, nothing stored', async (ctx) => {
  const before = await applied(ctx, 'email');
  const text = 'unlabelled canary fact';
  const cases: [string, object][] = [
    [memSubject('remember'), { v: 1, agent: 'py', domain: 'email', fact: { text } }],
    [memSubject('recall'), { v: 1, query: text }],
    [shardSubject('email', 'remember'), { v: 1, agent: 'py', fact: { text } }],
    [replicaSubject('email', 'recall'), { v: 1, query: text }],
  ];
  for (const [subject, body] of cases) {
    for (const h of [undefined, headerNamed('x-unrelated')]) {
      const answer = await send(ctx, subject, body, h);
      const error = answer.body['error'] as { code: string; message: string; retryable: boolean } | undefined;
      assert.is(answer.contentType, JSON_CONTENT_TYPE, `${subject}: the refusal says it is JSON`);
      assert.ok(error, `${subject}: ${JSON.stringify(answer.body)}`);
      assert.is(error.code, ErrorCode.BAD_REQUEST, `${subject}: ${error.message}`);
      assert.is(error.retryable, false);
      assert.match(error.message, /content-type: application\/json/, subject);
      assert.match(error.message, /looks like JSON/, subject);
    }
  }
  assert.is(await applied(ctx, 'email'), before, 'nothing was written');
  const check = await send(ctx, shardSubject('email', 'recall'), { v: 1, query: text }, headerNamed('content-type'));
  assert.equal(check.body['facts'], [], 'recall finds nothing');
});

json.run();
