/**
 * Config mistakes that used to load silently (review session 11, finding 4): a misspelled key anywhere is refused
 * with its path and the nearest known key; `replicas: 2` is refused with why; and what loads but cannot do what it
 * seems to — a standby on another Mini while the log has one replica (the reviewer's two Minis: kill the leader's
 * Mini and the standby never takes over), pruning whose automatic trigger is off — is a WARNING that `shardmind host`,
 * `status` and `apply` print when they start. Real processes for what an operator sees; `resolveConfig` for the rest.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNatsServer, freePort } from '../../cli/index.ts';
import { ConfigError, configWarnings, loadConfig, resolveConfig, type ClusterConfigInput } from '../../config/index.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'cli', 'bin.mjs');

/** Two Minis, each with its own nats-server; email led by mini-1 with mini-2 standing by; no replication block. */
function twoMinis(urls: readonly [string, string]): ClusterConfigInput {
  return {
    cluster: { name: 'two' },
    nodes: [
      { name: 'mini-1', nats: [urls[0], urls[1]] },
      { name: 'mini-2', nats: [urls[1], urls[0]] },
    ],
    domains: [{ name: 'email', description: 'mail', seeds: ['send an email'] }],
    placement: { email: { leader: 'mini-1', standbys: ['mini-2'] } },
  };
}
const TWO = twoMinis(['nats://10.0.0.1:4222', 'nats://10.0.0.2:4222']);

function refused(input: unknown): string {
  try {
    resolveConfig(input as ClusterConfigInput);
  } catch (err) {
    assert.instance(err, ConfigError);
    return (err as Error).message;
  }
  assert.unreachable('expected a ConfigError');
  return '';
}

test('config - an unknown key at any level is refused with its path and the nearest known key', () => {
  const d0 = TWO.domains[0]!;
  const cases: [unknown, string][] = [
    [{ ...TWO, replication: { replica: 3 } }, 'replication.replica: unknown field; did you mean "replicas"?'],
    [{ ...TWO, limit: { minSeqWaitMs: 100 } }, 'limit: unknown field; did you mean "limits"?'],
    [{ ...TWO, compaction: { everyEntry: 1000 } }, 'compaction.everyEntry: unknown field; did you mean "everyEntries"?'],
    [{ ...TWO, domains: [{ ...d0, compaction: { pruneDecayedBelw: 0.1 } }] }, 'domains[0].compaction.pruneDecayedBelw: unknown field; did you mean "pruneDecayedBelow"?'],
    [{ ...TWO, domains: [{ ...d0, defaultPredicates: { cardinality: 'one', halfLifeDays: 1 } }] }, 'domains[0].defaultPredicates: unknown field; did you mean "defaultPredicate"?'],
    [{ ...TWO, domains: [{ ...d0, predicates: { prefers: { cardinality: 'one', halfLife: 30 } } }] }, 'domains[0].predicates.prefers.halfLife: unknown field; did you mean "halfLifeDays"?'],
    [{ ...TWO, nodes: [{ ...TWO.nodes[0]!, natsServer: { host: 'a', prot: 4222 } }, TWO.nodes[1]] }, 'nodes[0].natsServer.prot: unknown field; did you mean "port"?'],
    [{ ...TWO, placement: { email: { leader: 'mini-1', standby: ['mini-2'] } } }, 'placement.email.standby: unknown field; did you mean "standbys"?'],
    [{ ...TWO, router: { shardTimeout: 500 } }, 'router.shardTimeout: unknown field; did you mean "shardTimeoutMs"?'],
    [{ ...TWO, cluster: { nmae: 'x' } }, 'cluster.nmae: unknown field; did you mean "name"?'],
    [{ ...TWO, backups: true }, 'backups: unknown field'],
  ];
  for (const [input, start] of cases) {
    const message = refused(input);
    assert.ok(message.startsWith(start), `${message} (expected it to start with ${start})`);
    assert.match(message, / takes /, 'the message lists what the block takes');
  }
});

test('config - replicas 2 is refused, saying why and what is allowed; 1 and 3 load', () => {
  assert.match(refused({ ...TWO, replication: { replicas: 2 } }), /^replication\.replicas: 2 is refused: .*both servers answer.*Use 1 .*or 3 to 5/);
  assert.is(resolveConfig({ ...TWO, replication: { replicas: 1 } }).replication.replicas, 1);
  const three = { ...TWO, nodes: [...TWO.nodes, { name: 'mini-3', nats: ['nats://10.0.0.3:4222'] }] };
  assert.is(resolveConfig({ ...three, replication: { replicas: 3 } }).replication.replicas, 3);
});

test('config - warnings: a standby on another Mini with a one-replica log; pruning with automatic compaction off', () => {
  const [standby] = configWarnings(resolveConfig(TWO));
  assert.match(standby ?? '', /^domain email has a standby on mini-2 but its log has 1 replica \(replication\.replicas is 1, the default below 3 nodes\): .*failover cannot keep acknowledged writes/);
  // Every node on one nats-server (the tests' and a laptop's setup): the log is wherever the standby is; no warning.
  const oneServer = { ...TWO, nodes: TWO.nodes.map((n) => ({ ...n, nats: ['nats://127.0.0.1:4222'] })) };
  assert.equal(configWarnings(resolveConfig(oneServer)), []);
  const three = { ...TWO, nodes: [...TWO.nodes, { name: 'mini-3', nats: ['nats://10.0.0.3:4222'] }] };
  assert.equal(configWarnings(resolveConfig(three)), [], 'three Minis default to R3');
  const prune = configWarnings(resolveConfig({ ...oneServer, compaction: { everyEntries: 0, pruneInactiveDays: 30 } }));
  assert.equal(prune.length, 1);
  assert.match(prune[0]!, /^domain email: compaction pruneInactiveDays 30 runs only before a compaction, and its automatic compaction is off \(everyEntries 0\)/);
  assert.equal(configWarnings(resolveConfig({ ...oneServer, compaction: { everyEntries: 1000, pruneInactiveDays: 30 } })), []);
});

test('config - the shipped cluster.config.ts loads with no warning', async () => {
  const shipped = await loadConfig(join(ROOT, 'cluster.config.ts'));
  assert.equal(configWarnings(shipped), []);
});

test('host and status as an operator runs them: a typo is one config error line; the two-Mini standby is a WARNING', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sm-config-mistakes-'));
  const nats = await startNatsServer();
  try {
    // mini-2's own server is another address (nothing listens there): as on two machines.
    const other = `nats://127.0.0.1:${await freePort()}`;
    const config = { ...twoMinis([nats.url, other]), dataDir: join(dir, 'data') };
    const good = join(dir, 'two.config.mjs');
    writeFileSync(good, `export default ${JSON.stringify(config)};\n`);
    const typo = join(dir, 'typo.config.mjs');
    writeFileSync(typo, `export default ${JSON.stringify({ ...config, replication: { replica: 3 } })};\n`);

    const refusedHost = spawnSync(process.execPath, [BIN, 'host', '--node', 'mini-1', '--config', typo], { encoding: 'utf8', timeout: 60_000 });
    assert.is(refusedHost.status, 1, refusedHost.stderr);
    assert.is(refusedHost.stderr.trim(), `shardmind host: config error: replication.replica: unknown field; did you mean "replicas"? (replication takes replicas, leaseMs, heartbeatMs)`);

    const status = spawnSync(process.execPath, [BIN, 'status', '--config', good, '--timeout', '1s'], { encoding: 'utf8', timeout: 60_000 });
    assert.match(status.stderr, /^WARNING: domain email has a standby on mini-2 but its log has 1 replica .*failover cannot keep acknowledged writes/m);

    // The host starts (the config is valid) and says so before anything else.
    const host = spawn(process.execPath, [BIN, 'host', '--node', 'mini-1', '--config', good], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => host.once('exit', (code) => resolve(code)));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no warning within 30 s: ${stderr}`)), 30_000);
        host.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
          if (/\[mini-1\] starting/.test(stderr)) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      const lines = stderr.split('\n');
      const warning = lines.findIndex((l) => /\[mini-1\] WARNING: domain email has a standby on mini-2 but its log has 1 replica/.test(l));
      assert.ok(warning >= 0, stderr);
      assert.ok(warning < lines.findIndex((l) => /\[mini-1\] starting/.test(l)), 'the warning comes first');
    } finally {
      host.kill('SIGTERM');
      await exited;
    }
  } finally {
    await nats.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
