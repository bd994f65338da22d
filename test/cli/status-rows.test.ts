/**
 * `statusRows`' LAG column (cli/status.ts): a leader is never behind its own log, a follower is behind the tail by
 * what it has not applied, and a replica ahead of its log has no lag to show (walkthrough-session12-ops F7, F15).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { logReplicaWarning, statusRows, type NodeStatus } from '../../cli/index.ts';

function node(name: string, shards: { domain: string; role: 'leader' | 'follower' | 'none'; state: string; appliedSeq: number; lag: number }[]): NodeStatus {
  return { node: name, ok: true, ms: 1, status: { v: 1, node: name, shards: shards.map((s) => ({ ...s, epoch: 3 })) } };
}

test('status rows - a leader shows lag 0 with writes in flight; a follower its distance to the tail; aheadOfLog none', () => {
  const logs = new Map([['email', { first: 1, last: 1210 }]]);
  const rows = statusRows(
    [
      node('mini-1', [{ domain: 'email', role: 'leader', state: 'leading', appliedSeq: 1206, lag: 3 }]),
      node('mini-2', [{ domain: 'email', role: 'follower', state: 'following', appliedSeq: 1205, lag: 0 }]),
      node('mini-3', [{ domain: 'email', role: 'none', state: 'aheadOfLog', appliedSeq: 1300, lag: 0 }]),
    ],
    logs,
    Date.now(),
  );
  const lag = (n: string) => rows.find((r) => r.node === n)?.lag;
  assert.is(lag('mini-1'), 0, 'its own writes in flight are not a lag');
  assert.is(lag('mini-2'), 5);
  assert.is(lag('mini-3'), undefined, 'ahead of the log: no lag (shown as -)');
});

test('log replicas - a log with an offline replica is named, with what one more loss does; all online says nothing', () => {
  const r = (name: string, offline = false) => ({ name, offline });
  const logs = new Map([
    ['calendar', { first: 1, last: 9, servers: { leader: 'mini-1', replicas: [r('mini-2'), r('mini-3')] } }],
    ['email', { first: 1, last: 9, servers: { leader: 'mini-1', replicas: [r('mini-2'), r('mini-3', true)] } }],
    ['files', { first: 1, last: 9, servers: { leader: 'mini-1', replicas: [r('mini-2', true), r('mini-3', true)] } }],
    ['notes', { first: 1, last: 9 }],
  ]);
  const lines = logReplicaWarning(logs)?.trim().split('\n') ?? [];
  assert.is(lines.length, 2, lines.join('\n'));
  assert.match(lines[0]!, /^WARNING: the email log has 2 of 3 replicas online \(mini-3 offline\): one more lost server stops its writes\./);
  assert.match(lines[1]!, /^WARNING: the files log has 1 of 3 replicas online \(mini-2, mini-3 offline\): it has no majority: its writes stop\./);
  assert.is(logReplicaWarning(new Map([['calendar', logs.get('calendar')!]])), undefined);
});

test.run();
