/**
 * The CLI's bounds on stopping (cli/lifecycle.ts): a host's drain that does not finish is given up on after
 * `DRAIN_BOUND_MS` (seen: a follower stuck bootstrapping from a snapshot its replica of the Object Store did not hold,
 * whose stop waited on the download, walkthrough-session12-ops F14), so SIGTERM always ends the process.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describeOpenResources, finishesWithin } from '../../cli/lifecycle.ts';

test('finishesWithin - true when the work settles in time, false when it never does, a rejection propagates', async () => {
  assert.is(await finishesWithin(Promise.resolve(), 1_000), true);
  const at = Date.now();
  assert.is(await finishesWithin(new Promise(() => undefined), 50), false);
  assert.ok(Date.now() - at < 1_000);
  await finishesWithin(Promise.reject(new Error('drain failed')), 1_000).then(
    () => assert.unreachable('the rejection is the caller’s'),
    (err: Error) => assert.is(err.message, 'drain failed'),
  );
  // Its own timer is cleared: nothing of it is left holding the event loop.
  assert.not.match(describeOpenResources(), 'Timeout');
});

test.run();
