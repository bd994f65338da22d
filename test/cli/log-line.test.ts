/**
 * `shardmind host`'s log lines (cli/log-line.ts): a UTC date and time, a level, the node's tag on every line, the
 * message as written; or one JSON object a line. Walkthrough-session12-ops F12: lines had only `HH:MM:SS.mmm`.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FlagValueError } from '../../cli/args.ts';
import { formatLogLine, levelOf, logFormatFlag } from '../../cli/log-line.ts';

const AT = new Date('2026-11-25T04:53:36.338Z');

test('log line - text: ISO-8601 UTC with the date, a level, the shard tag kept, the message unchanged', () => {
  const line = '[mini-1 files following] the leader is silent past its lease: won epoch 5, promoting';
  assert.is(formatLogLine(line, 'mini-1', 'text', AT), `2026-11-25T04:53:36.338Z INFO  ${line}`);
  assert.is(
    formatLogLine('[mini-2] host stopped', 'mini-2', 'text', AT),
    '2026-11-25T04:53:36.338Z INFO  [mini-2] host stopped',
  );
});

test('log line - text: a line with no tag gets the node it came from', () => {
  assert.is(
    formatLogLine('SIGTERM: draining (press Ctrl-C again to exit at once)', 'mini-3', 'text', AT),
    '2026-11-25T04:53:36.338Z INFO  [mini-3] SIGTERM: draining (press Ctrl-C again to exit at once)',
  );
});

test('log line - levels: ERROR:/FATAL are ERROR, WARNING: and failures being retried are WARN, the rest INFO', () => {
  assert.is(levelOf('ERROR: the email log ends at seq 2310 but this replica applied through seq 2314'), 'ERROR');
  assert.is(levelOf('FATAL uncaught exception (shards: email leading); the process exits: boom'), 'ERROR');
  assert.is(levelOf('WARNING: config drift: mini-3 runs 1b145e965078'), 'WARN');
  assert.is(levelOf('catch up failed (retrying): TIMEOUT'), 'WARN');
  assert.is(levelOf('pipeline broke: resync: append failed: no stream takes this subject'), 'WARN');
  assert.is(levelOf('could not start a host service (retrying): no responders'), 'WARN');
  assert.is(levelOf('→ following'), 'INFO');
  assert.is(levelOf('stopping: handed email to mini-3 in 39 ms'), 'INFO');
  assert.is(
    formatLogLine('[mini-1 email aheadOfLog] ERROR: the email log lost entries 2311..2314', 'mini-1', 'text', AT),
    '2026-11-25T04:53:36.338Z ERROR [mini-1 email aheadOfLog] ERROR: the email log lost entries 2311..2314',
  );
});

test('log line - json: one object with ts, level, node, domain, state, msg; domain and state only for a shard', () => {
  const shard = JSON.parse(formatLogLine('[mini-1 email leading] pipeline broke: x', 'mini-1', 'json', AT));
  assert.equal(shard, { ts: '2026-11-25T04:53:36.338Z', level: 'WARN', node: 'mini-1', domain: 'email', state: 'leading', msg: 'pipeline broke: x' });
  const host = JSON.parse(formatLogLine('SIGTERM: draining', 'mini-2', 'json', AT));
  assert.equal(host, { ts: '2026-11-25T04:53:36.338Z', level: 'INFO', node: 'mini-2', msg: 'SIGTERM: draining' });
  const multi = formatLogLine('[mini-2] FATAL uncaught exception: a\n    at b', 'mini-2', 'json', AT);
  assert.not.ok(multi.includes('\n'), 'a message over several lines stays one JSON line');
});

test('log line - --log-format takes text or json; anything else is a flag error naming both', () => {
  assert.is(logFormatFlag(undefined), 'text');
  assert.is(logFormatFlag('json'), 'json');
  assert.throws(() => logFormatFlag('JSON'), (e: unknown) => e instanceof FlagValueError && /--log-format: "JSON" must be text or json/.test(e.message));
  assert.throws(() => logFormatFlag(''), (e: unknown) => e instanceof FlagValueError);
});

test.run();
