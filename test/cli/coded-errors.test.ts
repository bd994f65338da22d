/**
 * The CLI as a person runs it: a command that cannot reach the cluster prints one coded line (and a hint), not a
 * stack trace — the way `remember` and `recall` already did (walkthrough-session10 finding 12).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from '../../cli/index.ts';

const MAIN = join(import.meta.dirname, '..', '..', 'cli', 'main.ts');

test('status against a port nothing listens on: one UNAVAILABLE line with a hint, exit 1', async () => {
  const port = await freePort();
  const run = spawnSync(process.execPath, ['--import', 'tsx', MAIN, 'status', '--servers', `nats://127.0.0.1:${port}`, '--nodes', 'local'], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.is(run.status, 1, run.stderr);
  const lines = run.stderr.trim().split('\n');
  assert.is(lines.length, 1, run.stderr);
  assert.match(lines[0]!, new RegExp(`^shardmind status: UNAVAILABLE: cannot connect to NATS at nats://127\\.0\\.0\\.1:${port}: .*--servers`));
  assert.not.match(run.stderr, /\n\s+at /, 'no stack trace');
});

test.run();
