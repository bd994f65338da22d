/** `shardmind apply`'s plan: the config's placement against what the cluster reports, add before remove. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { resolveConfig } from '../../config/index.ts';
import { type NodeStatus, type ShardStatusWire, planPlacement, renderPlan, domainViews } from '../../cli/index.ts';

const config = resolveConfig({
  nodes: ['mini-1', 'mini-2', 'mini-3', 'mini-4'].map((name) => ({ name, nats: ['nats://127.0.0.1:4222'] })),
  domains: ['calendar', 'email', 'files'].map((name) => ({ name, description: name, seeds: [name] })),
  placement: {
    calendar: { leader: 'mini-1', standbys: ['mini-2', 'mini-3'] },
    email: { leader: 'mini-4', standbys: ['mini-3'] },
    files: { leader: 'mini-3', standbys: ['mini-1', 'mini-2'] },
  },
});

function shard(domain: string, role: 'leader' | 'follower', epoch = 1): ShardStatusWire {
  return { domain, role, state: role === 'leader' ? 'leading' : 'following', appliedSeq: 10, lag: 0, epoch };
}

function cluster(byNode: Record<string, ShardStatusWire[] | 'down'>): NodeStatus[] {
  return Object.entries(byNode).map(([node, shards]) =>
    shards === 'down'
      ? { node, ok: false, error: 'no answer' }
      : { node, ok: true, ms: 1, status: { v: 1, node, shards } },
  );
}

test('apply plan - a cluster that matches the config needs nothing', () => {
  const statuses = cluster({
    'mini-1': [shard('calendar', 'leader'), shard('files', 'follower')],
    'mini-2': [shard('calendar', 'follower'), shard('files', 'follower')],
    'mini-3': [shard('calendar', 'follower'), shard('email', 'follower'), shard('files', 'leader')],
    'mini-4': [shard('email', 'leader')],
  });
  const steps = planPlacement(config, domainViews(statuses), new Set(['mini-1', 'mini-2', 'mini-3', 'mini-4']));
  assert.equal(steps, []);
  assert.match(renderPlan(steps), 'nothing to do');
});

test('apply plan - follow the new leader first, migrate, then drop the replica the config no longer has', () => {
  // email moved in the config from mini-2 (standbys mini-3, mini-1) to mini-4 (standby mini-3).
  const statuses = cluster({
    'mini-1': [shard('calendar', 'leader'), shard('email', 'follower'), shard('files', 'follower')],
    'mini-2': [shard('calendar', 'follower'), shard('email', 'leader', 3), shard('files', 'follower')],
    'mini-3': [shard('calendar', 'follower'), shard('email', 'follower', 3), shard('files', 'leader')],
    'mini-4': [],
  });
  const steps = planPlacement(config, domainViews(statuses), new Set(['mini-1', 'mini-2', 'mini-3', 'mini-4']));
  assert.equal(steps, [
    { op: 'follow', domain: 'email', node: 'mini-4' },
    { op: 'migrate', domain: 'email', from: 'mini-2', to: 'mini-4' },
    { op: 'unfollow', domain: 'email', node: 'mini-2' },
    { op: 'unfollow', domain: 'email', node: 'mini-1' },
  ]);
  const text = renderPlan(steps);
  assert.match(text, 'mini-2 → mini-4');
});

test('apply plan - after a failover the config leader gets its shard back; dead nodes are left alone', () => {
  // mini-1 died and came back as a follower; mini-2 leads calendar in epoch 2. mini-4 is down.
  const statuses = cluster({
    'mini-1': [shard('calendar', 'follower', 2), shard('files', 'follower')],
    'mini-2': [shard('calendar', 'leader', 2), shard('files', 'follower')],
    'mini-3': [shard('calendar', 'follower', 2), shard('email', 'leader'), shard('files', 'leader')],
    'mini-4': 'down',
  });
  const steps = planPlacement(config, domainViews(statuses), new Set(['mini-1', 'mini-2', 'mini-3']));
  assert.equal(steps, [{ op: 'migrate', domain: 'calendar', from: 'mini-2', to: 'mini-1' }]);
});

test('apply plan - a stale leader report loses to the higher epoch', () => {
  const statuses = cluster({
    'mini-1': [shard('calendar', 'leader', 1)], // paused old leader, not yet fenced
    'mini-2': [shard('calendar', 'leader', 2)],
    'mini-3': [shard('calendar', 'follower', 2)],
  });
  const views = domainViews(statuses);
  assert.is(views.get('calendar')?.leader, 'mini-2');
  assert.is(views.get('calendar')?.epoch, 2);
});

test.run();
