/**
 * A partial read through the router names what it lacks as an error object (walkthrough-session11 finding 8): each
 * `missing[]` entry of a fanned-out recall, history or lookup carries `code`, `message` and `retryable`, as every
 * other error does, beside the `error` string (`CODE: message`) older readers parse. Here `minSeq` names a sequence
 * the email shard has not reached, so email is missing with a retryable TIMEOUT while the other domains answer.
 * Against a real nats-server and host, in JSON and msgpack.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { headers } from 'nats';
import { CONTENT_TYPE_HEADER, ErrorCode, JSON_CONTENT_TYPE, decodePayload, encodePayload, memSubject, type Encoding } from '../../protocol/index.ts';
import { startRawOneMini, stopRawOneMini, type RawOneMini } from '../harness/router-ready.ts';

const missing = suite<RawOneMini>('missing domains');

missing.before(async (ctx) => void Object.assign(ctx, await startRawOneMini()));
missing.after(async (ctx) => stopRawOneMini(ctx));

interface MissingEntry {
  domain: string;
  error: string;
  code?: string;
  message?: string;
  retryable?: boolean;
}

async function ask(ctx: RawOneMini, op: string, body: object, encoding: Encoding): Promise<Record<string, unknown>> {
  const h = headers();
  if (encoding === 'json') h.set(CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE);
  const msg = await ctx.nc.request(memSubject(op), encodePayload(body, encoding), { timeout: 10_000, headers: h });
  return decodePayload(msg.data, encoding) as Record<string, unknown>;
}

missing('recall, history and lookup through the router - missing[] entries carry code, message, retryable and the old error string', async (ctx) => {
  const floor = { email: 99_999 };
  const requests: [string, object][] = [
    ['recall', { v: 1, subject: 'user', minSeq: floor }],
    ['history', { v: 1, subject: 'user', minSeq: floor }],
    ['lookup', { v: 1, entity: 'nobody-at-all', minSeq: floor }],
  ];
  for (const encoding of ['json', 'msgpack'] as const) {
    for (const [op, body] of requests) {
      const reply = await ask(ctx, op, body, encoding);
      const where = `${op} ${encoding}: ${JSON.stringify(reply)}`;
      if (op === 'lookup') {
        // Nobody knows the entity and email timed out: the whole call fails with the real failure, not NOT_FOUND.
        const error = reply['error'] as { code: string } | undefined;
        assert.is(error?.code, ErrorCode.TIMEOUT, where);
        continue;
      }
      const entries = reply['missing'] as MissingEntry[] | undefined;
      assert.ok(Array.isArray(entries) && entries.length === 1, where);
      const [entry] = entries;
      assert.is(entry!.domain, 'email', where);
      assert.is(entry!.code, ErrorCode.TIMEOUT, where);
      assert.is(entry!.retryable, true, where);
      assert.match(entry!.message ?? '', /sequence 99999 not applied/, where);
      assert.is(entry!.error, `${entry!.code}: ${entry!.message}`, `${where}: the string older readers split`);
      assert.ok((reply['domains'] as string[]).includes('calendar'), where);
    }
  }
});

missing('lookup through the router - a domain that failed is in missing[] as an error object when another answered', async (ctx) => {
  const h = headers();
  h.set(CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE);
  const wrote = await ask(ctx, 'entity', { v: 1, agent: 'tester', opId: 'dana-entity', domain: 'calendar', entity: { id: 'dana', name: 'Dana' } }, 'json');
  assert.is(wrote['error'], undefined, JSON.stringify(wrote));
  const reply = await ask(ctx, 'lookup', { v: 1, entity: 'dana', minSeq: { email: 99_999, calendar: 0 } }, 'json');
  const entries = reply['missing'] as MissingEntry[] | undefined;
  assert.ok(Array.isArray(entries) && entries.length === 1, JSON.stringify(reply));
  assert.equal({ ...entries[0], message: undefined }, { domain: 'email', error: entries[0]!.error, code: ErrorCode.TIMEOUT, message: undefined, retryable: true });
  assert.is(entries[0]!.error, `TIMEOUT: ${entries[0]!.message}`);
});

missing.run();
