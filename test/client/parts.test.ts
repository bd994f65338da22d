/** The client's pure parts: opIds, backoff, the retry loop, read-your-writes tracking, wire conversions. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freePort } from '../../cli/index.ts';
import {
  connect,
  DEFAULT_RETRY_POLICY,
  ErrorCode,
  ShardmindError,
  backoffDelay,
  createOpIdSource,
  domainOfFactId,
  withRetry,
} from '../../client/index.ts';
import { SAFE_ID } from '../../protocol/index.ts';

test('opIds - time-ordered, unique and safe even when the clock stands still or steps back', () => {
  let t = Date.UTC(2026, 10, 24);
  const ids = createOpIdSource(() => t);
  const made: string[] = [];
  for (let i = 0; i < 500; i++) made.push(ids.next());
  t += 5;
  made.push(ids.next());
  t -= 1000; // NTP step back
  made.push(ids.next(), ids.next());
  assert.is(new Set(made).size, made.length);
  assert.equal([...made].sort(), made);
  for (const id of made) {
    assert.is(id.length, 26);
    assert.ok(SAFE_ID.test(id), id);
  }
});

test('opIds - two sources in the same millisecond do not collide', () => {
  const t = () => 1_795_478_400_000;
  const a = createOpIdSource(t);
  const b = createOpIdSource(t);
  const all = new Set<string>();
  for (let i = 0; i < 100; i++) all.add(a.next()).add(b.next());
  assert.is(all.size, 200);
});

test('backoff - starts near 10 ms, doubles, is capped, jittered within [d/2, d]', () => {
  assert.is(backoffDelay(0, DEFAULT_RETRY_POLICY, () => 0), 5);
  assert.is(backoffDelay(0, DEFAULT_RETRY_POLICY, () => 1), 10);
  assert.is(backoffDelay(3, DEFAULT_RETRY_POLICY, () => 1), 80);
  assert.is(backoffDelay(20, DEFAULT_RETRY_POLICY, () => 1), DEFAULT_RETRY_POLICY.capMs);
  assert.is(backoffDelay(1000, DEFAULT_RETRY_POLICY, () => 0), DEFAULT_RETRY_POLICY.capMs / 2);
});

test('withRetry - retries retryable errors until success, with growing waits', async () => {
  let calls = 0;
  const waits: number[] = [];
  let clock = 0;
  const result = await withRetry(
    async () => {
      calls++;
      if (calls < 4) throw new ShardmindError(ErrorCode.NOT_LEADER, 'moving');
      return 'ok';
    },
    {
      deadline: 10_000,
      policy: DEFAULT_RETRY_POLICY,
      mayRetry: (e) => e.retryable,
      now: () => clock,
      sleep: async (ms) => {
        waits.push(ms);
        clock += ms;
      },
    },
  );
  assert.is(result, 'ok');
  assert.is(calls, 4);
  assert.is(waits.length, 3);
  assert.ok(waits[0]! <= 10 && waits[2]! <= 40 && waits[2]! >= 20, String(waits));
});

test('withRetry - a non-retryable error is thrown at once', async () => {
  let calls = 0;
  try {
    await withRetry(
      async () => {
        calls++;
        throw new ShardmindError(ErrorCode.BAD_REQUEST, 'fact.text: must be a string');
      },
      { deadline: Date.now() + 10_000, policy: DEFAULT_RETRY_POLICY, mayRetry: (e) => e.retryable },
    );
    assert.unreachable();
  } catch (err) {
    assert.is((err as ShardmindError).code, ErrorCode.BAD_REQUEST);
  }
  assert.is(calls, 1);
});

test('withRetry - gives up at the deadline with the last code and the attempt count', async () => {
  let clock = 0;
  let calls = 0;
  try {
    await withRetry(
      async () => {
        calls++;
        clock += 100; // each attempt takes 100 ms
        throw new ShardmindError(ErrorCode.UNAVAILABLE, 'no responder on sm.shard.email.remember');
      },
      {
        deadline: 1_000,
        policy: DEFAULT_RETRY_POLICY,
        mayRetry: (e) => e.retryable,
        now: () => clock,
        sleep: async (ms) => void (clock += ms),
      },
    );
    assert.unreachable();
  } catch (err) {
    const e = err as ShardmindError;
    assert.is(e.code, ErrorCode.UNAVAILABLE);
    assert.ok(e.message.includes(`gave up after ${calls} attempts`), e.message);
    assert.ok(calls >= 4 && clock <= 1_000 + 100, `${calls} calls, clock ${clock}`);
  }
});

test('domainOfFactId - the prefix of <domain>:<seq>:<index>; none is BAD_REQUEST', () => {
  assert.is(domainOfFactId('email:000000002a:0'), 'email');
  try {
    domainOfFactId('abc');
    assert.unreachable();
  } catch (err) {
    assert.is((err as ShardmindError).code, ErrorCode.BAD_REQUEST);
  }
});

test('connect - an unreachable server is a typed UNAVAILABLE error', async () => {
  const port = await freePort();
  try {
    await connect({ servers: `nats://127.0.0.1:${port}`, agent: 'a' });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, ShardmindError);
    assert.is((err as ShardmindError).code, ErrorCode.UNAVAILABLE);
    assert.ok((err as ShardmindError).message.includes(String(port)));
  }
});

test.run();
