/**
 * `shardmind nats-config`: the three configs of a loopback variant of the cluster config start three nats-servers
 * that form one JetStream cluster (an R3 stream can be made and has a leader and two current replicas).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, StorageType } from 'nats';
import { spawnSync } from 'node:child_process';
import { exposureWarnings, freePort, NatsServerProcess, waitForJetStream, runNatsConfig, natsConfigFor, PASSWORD_ENV, PASSWORD_RULE } from '../../cli/index.ts';
import { resolveConfig, ConfigError, type ClusterConfigInput } from '../../config/index.ts';

async function loopbackInput(dataDir: string): Promise<ClusterConfigInput> {
  const names = ['mini-1', 'mini-2', 'mini-3'];
  const nodes = [];
  for (const name of names) {
    const port = await freePort();
    const clusterPort = await freePort();
    nodes.push({ name, nats: [`nats://127.0.0.1:${port}`], natsServer: { host: '127.0.0.1', port, clusterPort } });
  }
  return {
    cluster: { name: 'loopback' },
    nodes,
    domains: [{ name: 'calendar', description: 'meetings', seeds: ['book a meeting'] }],
    placement: { calendar: { leader: 'mini-1', standbys: ['mini-2', 'mini-3'] } },
    dataDir,
  };
}

async function until(cond: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('nats-config - three generated configs form a JetStream cluster that holds an R3 stream', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shardmind-natscfg-'));
  const servers: NatsServerProcess[] = [];
  try {
    const input = await loopbackInput(join(dir, 'data'));
    const config = resolveConfig(input);
    for (const node of config.nodes) {
      const text = natsConfigFor(config, node.name);
      assert.match(text, `server_name: "${node.name}"`);
      assert.match(text, `name: "loopback"`);
      assert.match(text, join(dir, 'data', 'nats'));
      for (const peer of config.nodes.filter((n) => n !== node)) {
        assert.match(text, `nats-route://127.0.0.1:${peer.natsServer!.clusterPort}`);
      }
      assert.not.match(text, `nats-route://127.0.0.1:${node.natsServer!.clusterPort}`, 'no route to itself');
      // Three servers on one machine need three store dirs; on real Minis the default is fine.
      const confPath = join(dir, `${node.name}.conf`);
      writeFileSync(confPath, text.replace(join(dir, 'data', 'nats'), join(dir, node.name)));
      servers.push(new NatsServerProcess(node.name, node.natsServer!.port!, join(dir, node.name), confPath, undefined, false));
    }
    await Promise.all(servers.map((s) => s.start()));
    const nc = await connect({ servers: servers.map((s) => s.url) });
    try {
      await waitForJetStream(nc);
      const jsm = await nc.jetstreamManager({ checkAPI: false });
      await until(
        async () => {
          try {
            await jsm.streams.add({ name: 'R3_CHECK', subjects: ['r3.check'], num_replicas: 3, storage: StorageType.File });
            return true;
          } catch {
            return false; // the meta leader may still be settling peers
          }
        },
        20_000,
        'an R3 stream to be created',
      );
      const js = nc.jetstream();
      const ack = await js.publish('r3.check', new TextEncoder().encode('x'));
      assert.is(ack.seq, 1);
      await until(
        async () => {
          const info = await jsm.streams.info('R3_CHECK');
          return Boolean(info.cluster?.leader) && (info.cluster?.replicas ?? []).filter((r) => r.current).length === 2;
        },
        15_000,
        'the stream to have a leader and two current replicas',
      );
      const info = await jsm.streams.info('R3_CHECK');
      assert.is(info.config.num_replicas, 3);
      assert.is(info.cluster?.name, 'loopback');
      const members = [info.cluster!.leader!, ...info.cluster!.replicas!.map((r) => r.name)].sort();
      assert.equal(members, ['mini-1', 'mini-2', 'mini-3']);
    } finally {
      await nc.close();
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
});

test('nats-config - the command writes --out from a config file, and names the field a config lacks', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shardmind-natscfg-'));
  try {
    const input = await loopbackInput('./data');
    const configPath = join(dir, 'cluster.config.ts');
    writeFileSync(configPath, `export default ${JSON.stringify(input, null, 2)};\n`);
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s) };
    const outPath = join(dir, 'etc', 'mini-2.conf');
    assert.is(await runNatsConfig(['--node', 'mini-2', '--config', configPath, '--out', outPath], io), 0);
    const text = readFileSync(outPath, 'utf8');
    assert.match(text, 'server_name: "mini-2"');
    assert.match(text, `store_dir: ${JSON.stringify(join(dir, 'data', 'nats'))}`, 'dataDir is relative to the config file');
    assert.is(await runNatsConfig(['--config', configPath], io), 2, '--node is required');
    assert.is(await runNatsConfig(['--node', 'mini-9', '--config', configPath], io), 1);
    assert.match(err.join(''), 'mini-9');
    const noServer = resolveConfig({ ...input, nodes: input.nodes.map((n) => ({ name: n.name, nats: n.nats })) });
    assert.throws(() => natsConfigFor(noServer, 'mini-1'), (e: unknown) => e instanceof ConfigError && e.field === 'nodes[0].natsServer');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('nats-config --auth - nats-server accepts the authorization block, and refuses to start without the passwords', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shardmind-nats-auth-'));
  try {
    const config = resolveConfig(await loopbackInput(dir));
    const file = join(dir, 'mini-1.conf');
    writeFileSync(file, natsConfigFor(config, 'mini-1', { auth: true, routePassword: 'sm4a5b6c7d8e9f0a1b' }));
    const text = readFileSync(file, 'utf8');
    assert.match(text, /authorization \{/);
    assert.match(text, /nats-route:\/\/route:sm4a5b6c7d8e9f0a1b@127\.0\.0\.1:/, 'routes log in (test/cli/nats-route-auth.test.ts)');
    const check = (env: NodeJS.ProcessEnv) => spawnSync('nats-server', ['-c', file, '-t'], { encoding: 'utf8', env });
    const withPasswords = check({ ...process.env, ...Object.fromEntries(Object.values(PASSWORD_ENV).map((k) => [k, 'secret'])) });
    assert.is(withPasswords.status, 0, withPasswords.stderr + withPasswords.stdout);
    const without = check(Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SHARDMIND_'))));
    assert.is.not(without.status, 0);
    assert.match(without.stderr + without.stdout, /SHARDMIND_HOST_PASSWORD/);
    // nats-server parses the value as a config token: PASSWORD_RULE is what it reads back as a string.
    const digitFirst = check({ ...process.env, ...Object.fromEntries(Object.values(PASSWORD_ENV).map((k) => [k, '4e59a6b7c8d9f0a1'])) });
    assert.is.not(digitFirst.status, 0);
    assert.match(digitFirst.stderr + digitFirst.stdout, /could not be parsed/);
    assert.not.ok(PASSWORD_RULE.test('4e59a6b7c8d9f0a1'));
    assert.ok(PASSWORD_RULE.test('sm4a5b6c7d8e9f0a1b'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('nats-config - warns when the config leaves the server open: a LAN address without --auth, --tls without --auth', () => {
  const plan = (host: string) => ({ host, port: 4222, clusterPort: 6222, storeDir: '/x' });
  assert.equal(exposureWarnings(plan('127.0.0.1'), false, false), []);
  assert.match(exposureWarnings(plan('mini-1.local'), false, false).join('\n'), 'mini-1.local:4222 and :6222 accept anyone on the network');
  assert.match(exposureWarnings(plan('127.0.0.1'), false, true).join('\n'), '--tls encrypts but does not authenticate clients');
  assert.equal(exposureWarnings(plan('mini-1.local'), true, true), []);
});

test.run();
