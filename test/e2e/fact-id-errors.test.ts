/**
 * Error codes for fact ids and sequence floors, against a real nats-server and host, in JSON as a Python agent sends
 * them (walkthrough-session11 finding 17): a fact id whose domain is not configured is UNKNOWN_DOMAIN through the
 * router (it was a BAD_REQUEST saying the id named no domain); a malformed fact id is a BAD_REQUEST on the router and
 * the shard (it was NOT_FOUND); a `minSeq` past 2^53 says the bound and does not echo the rounded number. Nothing is
 * appended for any of them.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { headers } from 'nats';
import { CONTENT_TYPE_HEADER, ErrorCode, JSON_CONTENT_TYPE, memSubject, shardSubject } from '../../protocol/index.ts';
import { startRawOneMini, stopRawOneMini, type RawOneMini } from '../harness/router-ready.ts';
import { DOMAINS, NODE } from '../client/one-mini.ts';

const ids = suite<RawOneMini>('fact id errors');

ids.before(async (ctx) => void Object.assign(ctx, await startRawOneMini()));
ids.after(async (ctx) => stopRawOneMini(ctx));

interface WireError {
  code: string;
  message: string;
  retryable: boolean;
}

/** Sends JSON text (so 2**60 travels as the digits a Python client writes) and returns the reply's error. */
async function errorOf(ctx: RawOneMini, subject: string, json: string): Promise<WireError> {
  const h = headers();
  h.set(CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE);
  for (let attempt = 1; ; attempt++) {
    const msg = await ctx.nc.request(subject, new TextEncoder().encode(json), { timeout: 5_000, headers: h });
    const reply = JSON.parse(new TextDecoder().decode(msg.data)) as { error?: WireError };
    assert.ok(reply.error, `${subject} ${json}: expected an error, got ${JSON.stringify(reply)}`);
    // A late heartbeat on a loaded box makes the shard guard answer NOT_LEADER; a client retries it.
    if (reply.error.code !== ErrorCode.NOT_LEADER || attempt === 20) return reply.error;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function positions(ctx: RawOneMini): Promise<number[]> {
  const status = await ctx.hosts.host(NODE).status();
  return DOMAINS.map((d) => status.shards.find((s) => s.domain === d)?.appliedSeq ?? -1);
}

ids('a fact id naming an unknown domain - UNKNOWN_DOMAIN through the router, on forget, retract and get', async (ctx) => {
  const before = await positions(ctx);
  for (const op of ['forget', 'retract', 'get']) {
    const e = await errorOf(ctx, memSubject(op), JSON.stringify({ v: 1, agent: 'py', opId: `op-${op}`, factId: 'nope:0000000002:0' }));
    assert.is(e.code, ErrorCode.UNKNOWN_DOMAIN, `${op}: ${e.message}`);
    assert.is(e.retryable, false);
    assert.match(e.message, /factId: "nope:0000000002:0" names domain "nope"/, op);
    assert.match(e.message, /calendar, email, files/, op);
  }
  assert.equal(await positions(ctx), before, 'nothing appended');
});

ids('a malformed fact id - BAD_REQUEST naming factId, on the router and the shard, not NOT_FOUND', async (ctx) => {
  const before = await positions(ctx);
  for (const op of ['forget', 'retract', 'get']) {
    for (const subject of [memSubject(op), shardSubject('email', op)]) {
      for (const factId of ['garbage', 'email:0000000002', 'email:not-an-id:0']) {
        const body = { v: 1, agent: 'py', opId: `bad-${op}`, domain: 'email', factId };
        const e = await errorOf(ctx, subject, JSON.stringify(body));
        assert.is(e.code, ErrorCode.BAD_REQUEST, `${subject} ${factId}: ${e.message}`);
        assert.match(e.message, /^factId: must be a fact id/, `${subject} ${factId}`);
      }
    }
  }
  assert.equal(await positions(ctx), before, 'nothing appended');
});

ids('minSeq past 2^53 - BAD_REQUEST stating the bound, without the rounded number', async (ctx) => {
  // 2**60 as Python's json.dumps writes it.
  const json = '{"v":1,"query":"x","minSeq":{"email":1152921504606846976}}';
  for (const subject of [memSubject('recall'), shardSubject('email', 'recall')]) {
    const e = await errorOf(ctx, subject, json);
    assert.is(e.code, ErrorCode.BAD_REQUEST, e.message);
    assert.match(e.message, /^minSeq\.email: must be an integer in 0\.\.2\^53 - 1/);
    assert.not.match(e.message, /1152921504606847000/, 'not the rounded echo');
  }
});

ids.run();
