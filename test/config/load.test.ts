/** `resolveConfig`, `loadConfig`, `singleNodeConfig`: defaults are filled, and every mistake names its field. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigError,
  DEFAULT_MAX_PAYLOAD_BYTES,
  DEFAULT_PREDICATE,
  loadConfig,
  placementsOf,
  resolveConfig,
  singleNodeConfig,
  type ClusterConfigInput,
} from '../../config/index.ts';

const base: ClusterConfigInput = {
  nodes: [
    { name: 'mini-1', nats: ['nats://127.0.0.1:4222'] },
    { name: 'mini-2', nats: ['nats://127.0.0.1:4223'] },
  ],
  domains: [
    { name: 'email', description: 'mail', seeds: ['send an email'] },
    { name: 'files', description: 'docs', seeds: [] },
  ],
  placement: { email: { leader: 'mini-1', standbys: ['mini-2'] }, files: { leader: 'mini-2' } },
};

function fails(input: unknown, message: string): void {
  try {
    resolveConfig(input as ClusterConfigInput);
  } catch (err) {
    assert.instance(err, ConfigError);
    assert.is((err as Error).message, message);
    return;
  }
  assert.unreachable(`expected ConfigError "${message}"`);
}

test('resolveConfig - fills every default', () => {
  const c = resolveConfig(base);
  assert.is(c.limits.maxPayloadBytes, DEFAULT_MAX_PAYLOAD_BYTES);
  assert.is(c.replication.replicas, 1, 'fewer than 3 nodes: R1');
  assert.equal(c.placement['files'], { leader: 'mini-2', standbys: [] });
  assert.equal(c.domains[0]?.defaultPredicate, DEFAULT_PREDICATE);
  assert.is(c.dataDir, './.shardmind');
  assert.is(c.cluster.name, 'shardmind');
});

test('resolveConfig - three nodes default to three replicas', () => {
  const c = resolveConfig({ ...base, nodes: [...base.nodes, { name: 'mini-3', nats: ['nats://127.0.0.1:4224'] }] });
  assert.is(c.replication.replicas, 3);
});

test('resolveConfig - errors name the field and the problem', () => {
  fails({ ...base, placement: { ...base.placement, email: { leader: 'mini-9' } } }, 'placement.email.leader: node "mini-9" is not in nodes');
  fails({ ...base, placement: { email: { leader: 'mini-1' } } }, 'placement.files: missing: every domain needs a leader node');
  fails({ ...base, placement: { ...base.placement, sport: { leader: 'mini-1' } } }, 'placement.sport: "sport" is not in domains');
  fails({ ...base, placement: { ...base.placement, email: { leader: 'mini-1', standbys: ['mini-1'] } } }, 'placement.email.standbys[0]: node "mini-1" is already placed for this domain');
  fails({ ...base, domains: [{ ...base.domains[0], name: 'Email' }] }, 'domains[0].name: "Email" must match /^[a-z][a-z0-9_]{0,31}$/');
  fails({ ...base, domains: [base.domains[0], base.domains[0]] }, 'domains[1].name: "email" appears twice');
  fails({ ...base, nodes: [base.nodes[0], base.nodes[0]] }, 'nodes[1].name: "mini-1" appears twice');
  fails({ ...base, nodes: [{ name: 'mini-1', nats: ['localhost:4222'] }] }, 'nodes[0].nats[0]: "localhost:4222" is not a nats:// URL');
  fails({ ...base, nodes: [] }, 'nodes: must be a non-empty list');
  fails({ ...base, limits: { maxPayloadBytes: -1 } }, 'limits.maxPayloadBytes: -1 must be a positive integer');
  fails({ ...base, replication: { replicas: 3 } }, 'replication.replicas: 3 is more than the 2 nodes (one nats-server each)');
  fails({ ...base, replication: { leaseMs: 300, heartbeatMs: 250 } }, 'replication.heartbeatMs: must be at most half of leaseMs (300)');
  fails(
    { ...base, domains: [{ ...base.domains[0], predicates: { likes: { cardinality: 'some', halfLifeDays: 3 } } }, base.domains[1]] },
    'domains[0].predicates.likes.cardinality: "some" must be "one" or "many"',
  );
});

test('singleNodeConfig - one node leads every domain with no standbys', () => {
  const c = singleNodeConfig(resolveConfig(base), 'local', 'nats://127.0.0.1:5000');
  assert.equal(c.nodes, [{ name: 'local', nats: ['nats://127.0.0.1:5000'] }]);
  assert.equal(placementsOf(c, 'local').map((p) => [p.domain.name, p.role]), [['email', 'leader'], ['files', 'leader']]);
  assert.is(c.replication.replicas, 1);
});

test('placementsOf - a node sees its leader and standby roles', () => {
  const c = resolveConfig(base);
  assert.equal(placementsOf(c, 'mini-2').map((p) => [p.domain.name, p.role]), [['email', 'standby'], ['files', 'leader']]);
});

test('loadConfig - imports the shipped TypeScript config and resolves dataDir next to the file', async () => {
  const c = await loadConfig('./cluster.config.ts');
  assert.equal(c.domains.map((d) => d.name), ['calendar', 'email', 'files']);
  assert.is(c.replication.replicas, 3);
  assert.ok(c.dataDir.startsWith('/'), 'dataDir is absolute');
});

test('loadConfig - a TypeScript config outside any package (/etc/shardmind, say) loads too', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sm-config-'));
  try {
    // No package.json anywhere above a temp dir: the file is not in an ES-module package.
    writeFileSync(
      join(dir, 'cluster.config.ts'),
      `const minis: string[] = ['mini-1', 'mini-2'];
export default {
  dataDir: './data',
  nodes: minis.map((name) => ({ name, nats: ['nats://' + name + '.local:4222'] })),
  domains: [
    { name: 'calendar', description: 'meetings', seeds: ['book a meeting'] },
    { name: 'email', description: 'mail', seeds: ['send an email'] },
  ],
  placement: { calendar: { leader: 'mini-1', standbys: ['mini-2'] }, email: { leader: 'mini-2', standbys: ['mini-1'] } },
};\n`,
    );
    const c = await loadConfig(join(dir, 'cluster.config.ts'));
    assert.equal(c.nodes.map((n) => n.name), ['mini-1', 'mini-2']);
    assert.equal(c.domains.map((d) => d.name), ['calendar', 'email']);
    assert.is(c.dataDir, join(dir, 'data'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('loadConfig - a missing file or a file without a default export says so', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sm-config-'));
  try {
    writeFileSync(join(dir, 'bad.config.mjs'), 'export const x = 1;\n');
    await loadConfig(join(dir, 'bad.config.mjs')).then(
      () => assert.unreachable('should fail'),
      (err: Error) => assert.match(err.message, /must `export default defineConfig/),
    );
    await loadConfig(join(dir, 'nope.ts')).then(
      () => assert.unreachable('should fail'),
      (err: Error) => assert.match(err.message, /does not exist/),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
