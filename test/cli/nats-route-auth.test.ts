/**
 * `nats-config --auth` closes the route port too (decisions §69; review session 12, H2). Three nats-servers from
 * the generated configs of a loopback cluster still form one cluster (their routes log in as `route`); a stranger's
 * nats-server that routes in without the route password is refused, so its password-less clients neither read the
 * cluster's subjects nor publish into them. Before the fix such a server joined, and its client forged a dead
 * leader's heartbeats. A second stranger that does hold the password joins within the same window: the check can
 * see a route when there is one.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import {
  freePort,
  NatsServerProcess,
  natsConfigFor,
  PASSWORD_ENV,
  ROUTE_PASSWORD_ENV,
  routeAuthorizationBlock,
  routeUrlWithLogin,
  runNatsConfig,
  runStatus,
  startNatsServer,
} from '../../cli/index.ts';
import { redactUrl } from '../../protocol/index.ts';
import { connect as connectMemory } from '../../client/index.ts';
import { resolveConfig, type ClusterConfigInput } from '../../config/index.ts';

const password = (): string => `p${randomBytes(12).toString('hex')}`;
const PASSWORDS = { host: password(), agent: password(), operator: password() };
const ROUTE_PASSWORD = password();

async function loopbackInput(dataDir: string): Promise<ClusterConfigInput> {
  const nodes = [];
  for (const name of ['mini-1', 'mini-2', 'mini-3']) {
    const port = await freePort();
    nodes.push({ name, nats: [`nats://127.0.0.1:${port}`], natsServer: { host: '127.0.0.1', port, clusterPort: await freePort() } });
  }
  return {
    cluster: { name: 'loopback' },
    nodes,
    domains: [{ name: 'calendar', description: 'meetings', seeds: ['book a meeting'] }],
    placement: { calendar: { leader: 'mini-1', standbys: ['mini-2', 'mini-3'] } },
    dataDir,
  };
}

/** Publishes on `from` until `seen()` holds or `ms` pass; says which. */
async function publishUntil(from: NatsConnection, subject: string, seen: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!seen()) {
    if (Date.now() > deadline) return false;
    from.publish(subject, new TextEncoder().encode('{"v":1,"node":"mini-1","epoch":1}'));
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

test('nats-config --auth: routes log in; a server without the route password cannot join, one with it can', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shardmind-route-auth-'));
  const servers: NatsServerProcess[] = [];
  const strangers: NatsServerProcess[] = [];
  const conns: NatsConnection[] = [];
  for (const [role, env] of Object.entries(PASSWORD_ENV)) process.env[env] = PASSWORDS[role as keyof typeof PASSWORDS];
  try {
    const config = resolveConfig(await loopbackInput(join(dir, 'data')));
    assert.throws(() => natsConfigFor(config, 'mini-1', { auth: true }), /SHARDMIND_ROUTE_PASSWORD/, 'no route password, no --auth config for a cluster');
    for (const node of config.nodes) {
      const text = natsConfigFor(config, node.name, { auth: true, routePassword: ROUTE_PASSWORD });
      assert.match(text, `authorization { user: "route", password: "${ROUTE_PASSWORD}" }`);
      for (const peer of config.nodes.filter((n) => n !== node)) assert.match(text, `nats-route://route:${ROUTE_PASSWORD}@127.0.0.1:${peer.natsServer!.clusterPort}`);
      const confPath = join(dir, `${node.name}.conf`);
      writeFileSync(confPath, text.replace(join(dir, 'data', 'nats'), join(dir, node.name)));
      servers.push(new NatsServerProcess(node.name, node.natsServer!.port!, join(dir, node.name), confPath, undefined, false));
    }
    await Promise.all(servers.map((s) => s.start()));
    const host1 = await connect({ servers: servers[0]!.url, user: 'host', pass: PASSWORDS.host });
    const host3 = await connect({ servers: servers[2]!.url, user: 'host', pass: PASSWORDS.host });
    conns.push(host1, host3);

    // The real three are one cluster: what mini-3's client publishes reaches mini-1's.
    let across = 0;
    host1.subscribe('sm.hb.calendar', { callback: () => void across++ });
    await host1.flush();
    assert.ok(await publishUntil(host3, 'sm.hb.calendar', () => across > 0, 15_000), 'the three servers route to each other');

    // Two strangers route in to mini-1's route port: one without the password, one with it.
    const target = config.nodes[0]!.natsServer!.clusterPort!;
    const without = await startNatsServer({ name: 'stranger', cluster: { name: 'loopback', port: await freePort(), routes: [`nats-route://127.0.0.1:${target}`] } });
    strangers.push(without);
    const holder = await startNatsServer({
      name: 'holder',
      cluster: {
        name: 'loopback',
        port: await freePort(),
        routes: [routeUrlWithLogin('127.0.0.1', target, ROUTE_PASSWORD)],
        authorization: routeAuthorizationBlock(ROUTE_PASSWORD),
      },
    });
    strangers.push(holder);
    const stranger = await connect({ servers: without.url, noEcho: true }); // no password: the stranger's server asks none
    const insider = await connect({ servers: holder.url });
    conns.push(stranger, insider);
    const strangerSaw: string[] = [];
    let insiderSaw = 0;
    stranger.subscribe('>', { callback: (_e, m) => void strangerSaw.push(m.subject) });
    insider.subscribe('sm.hb.calendar', { callback: () => void insiderSaw++ });
    await Promise.all([stranger.flush(), insider.flush()]);
    let forged = 0;
    host1.subscribe('sm.hb.email', { callback: () => void forged++ });
    await host1.flush();

    assert.ok(await publishUntil(host1, 'sm.hb.calendar', () => insiderSaw > 0, 15_000), 'a server with the route password joins');
    // The same window again for the stranger, publishing both ways.
    await publishUntil(host1, 'sm.hb.calendar', () => false, 1_500);
    await publishUntil(stranger, 'sm.hb.email', () => false, 1_000);
    assert.equal(strangerSaw, [], 'the stranger’s client saw none of the cluster’s subjects');
    assert.is(forged, 0, 'nothing the stranger’s client published reached the cluster');
    assert.match(without.lastLog(), /Authorization Violation/, 'the route was refused for its login');

    // The command: the password from the environment, the file private.
    process.env[ROUTE_PASSWORD_ENV] = ROUTE_PASSWORD;
    const out = join(dir, 'out', 'mini-2.conf');
    const io = { out: () => undefined, err: () => undefined };
    const cfgPath = join(dir, 'cluster.config.ts');
    writeFileSync(cfgPath, `export default ${JSON.stringify(await loopbackInput(join(dir, 'data')))};\n`);
    assert.is(await runNatsConfig(['--node', 'mini-2', '--config', cfgPath, '--auth', '--out', out], io), 0);
    assert.match(readFileSync(out, 'utf8'), `nats-route://route:${ROUTE_PASSWORD}@`);
    assert.is(statSync(out).mode & 0o777, 0o600, 'the config holding the route password is private');
  } finally {
    for (const nc of conns) await nc.close().catch(() => undefined);
    for (const s of [...strangers, ...servers]) await s.stop();
    for (const s of strangers) await s.destroy();
    for (const env of [...Object.values(PASSWORD_ENV), ROUTE_PASSWORD_ENV]) delete process.env[env];
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a password in a --servers URL is not echoed in a connection error', async () => {
  const port = await freePort(); // nothing listens there
  const message = await runStatus(['--servers', `nats://operator:${ROUTE_PASSWORD}@127.0.0.1:${port}`, '--nodes', 'local'], {
    out: () => undefined,
    err: () => undefined,
  }).then(
    (code) => `exit ${code}`,
    (e: Error) => e.message,
  );
  assert.match(message, `cannot connect to NATS at nats://operator:***@127.0.0.1:${port}`);
  assert.not.ok(message.includes(ROUTE_PASSWORD), message);
  const sdk = await connectMemory({ servers: `nats://agent:${ROUTE_PASSWORD}@127.0.0.1:${port}`, agent: 'a' }).then(
    async (c) => (await c.close(), 'connected'),
    (e: Error) => e.message,
  );
  assert.match(sdk, `cannot connect to NATS at nats://agent:***@127.0.0.1:${port}`, 'the SDK says it the same way');
  assert.not.ok(sdk.includes(ROUTE_PASSWORD), sdk);
  assert.is(redactUrl(`tls://${ROUTE_PASSWORD}@mini-1.local:4222`), 'tls://***@mini-1.local:4222');
  assert.is(redactUrl('nats://mini-1.local:4222'), 'nats://mini-1.local:4222');
});

test.run();
