/**
 * A cluster that requires a login (`shardmind nats-config --auth`): a real nats-server with the generated
 * authorization block, a real host process logging in as `host`. An `agent` uses the memory API and nothing else —
 * it cannot append to a shard's log, forge a heartbeat or command a host; an `operator` runs `shardmind status`;
 * no password or a wrong one is refused. Passwords live in the environment, never in the config file.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as natsConnect, type NatsConnection } from 'nats';
import { connect } from '../../client/index.ts';
import {
  PASSWORD_ENV,
  USER_ENV,
  USER_PASSWORD_ENV,
  authorizationBlock,
  runStatus,
  startNatsServer,
  type NatsServerProcess,
} from '../../cli/index.ts';
import type { ClusterConfigInput } from '../../config/index.ts';
import { ctlSubject, encodePayload, logStream, logSubject } from '../../protocol/index.ts';
import shipped from '../../cluster.config.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';

// nats-server parses an environment variable's value as a config token: it must start with a letter (a hex string
// like 4e59… reads as a number and fails to parse — how this test first flaked, 2 runs in 7).
const password = (): string => `p${randomBytes(12).toString('hex')}`;
const PASSWORDS = { host: password(), agent: password(), operator: password() };

interface Ctx {
  nats?: NatsServerProcess;
  hosts?: HostCluster;
  host?: NatsConnection;
}

function config(url: string): ClusterConfigInput {
  return {
    ...shipped,
    cluster: { name: 'auth-test' },
    nodes: [{ name: 'mini-1', nats: [url] }],
    placement: Object.fromEntries(shipped.domains.map((d) => [d.name, { leader: 'mini-1', standbys: [] }])),
    replication: { replicas: 1, leaseMs: 1500, heartbeatMs: 250 },
  };
}

/** Starts the cluster (uvu swallows a `before` hook's error, so setup runs inside the test, where errors show). */
async function start(ctx: Ctx): Promise<void> {
  // nats-server reads the passwords from its environment (it is spawned with this process's).
  for (const [role, env] of Object.entries(PASSWORD_ENV)) process.env[env] = PASSWORDS[role as keyof typeof PASSWORDS];
  ctx.nats = await startNatsServer({ authorization: authorizationBlock() });
  ctx.hosts = await startHosts({
    config: config(ctx.nats.url),
    env: { [USER_ENV]: 'host', [USER_PASSWORD_ENV]: PASSWORDS.host },
  });
  ctx.host = await natsConnect({ servers: ctx.nats.url, user: 'host', pass: PASSWORDS.host });
}

async function stop(ctx: Ctx): Promise<void> {
  await ctx.host?.close();
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
  for (const env of Object.values(PASSWORD_ENV)) delete process.env[env];
}

function configHasNoPassword(ctx: Ctx): void {
  const text = readFileSync(ctx.nats!.configPath, 'utf8');
  for (const env of Object.values(PASSWORD_ENV)) assert.ok(text.includes(`$${env}`), env);
  for (const p of Object.values(PASSWORDS)) assert.not.ok(text.includes(p));
}

async function agentIsConfined(ctx: Ctx): Promise<void> {
  const url = ctx.nats!.url;
  const memory = await connect({ servers: url, agent: 'agent-a', user: 'agent', pass: PASSWORDS.agent });
  try {
    const r = await memory.remember({ text: 'The user prefers PDF attachments over links' }, { domain: 'email' });
    assert.is(r.status, 'created');
    const found = await memory.recall({ query: 'PDF attachments', domain: 'email' });
    assert.is(found.facts[0]?.text, 'The user prefers PDF attachments over links');
  } finally {
    await memory.close();
  }

  const jsm = await ctx.host!.jetstreamManager({ checkAPI: false });
  const tailBefore = (await jsm.streams.info(logStream('email'))).state.last_seq;
  const agent = await natsConnect({ servers: url, user: 'agent', pass: PASSWORDS.agent });
  const violations: string[] = [];
  void (async () => {
    for await (const s of agent.status()) if (s.type === 'error') violations.push(String(s.data));
  })();
  try {
    agent.publish(logSubject('email'), encodePayload({ v: 1, op: 'assert', opId: 'rogue', fact: { text: 'rogue' } }, 'msgpack'));
    const beats: unknown[] = [];
    let refusedSub = '';
    agent.subscribe('sm.hb.>', { callback: (e, m) => (e ? (refusedSub = e.message) : beats.push(m)) });
    await agent.flush();
    const ctl = await agent
      .request(ctlSubject('mini-1', 'status'), encodePayload({ v: 1 }, 'msgpack'), { timeout: 1_000 })
      .then(
        () => 'answered',
        (err: Error) => err.message,
      );
    await new Promise((r) => setTimeout(r, 600)); // several heartbeat periods
    assert.is.not(ctl, 'answered', 'an agent cannot command a host');
    assert.is(beats.length, 0, 'an agent cannot listen to (or forge) heartbeats');
    assert.match(refusedSub, /Permissions Violation for Subscription to "sm\.hb\.>"/);
    assert.is((await jsm.streams.info(logStream('email'))).state.last_seq, tailBefore, 'the log did not take the rogue append');
    assert.ok(violations.includes('PERMISSIONS_VIOLATION'), `the server reported the refusals: ${violations.join(', ')}`);
  } finally {
    await agent.close();
  }
}

async function operatorAndStrangers(ctx: Ctx): Promise<void> {
  const url = ctx.nats!.url;
  process.env[USER_ENV] = 'operator';
  process.env[USER_PASSWORD_ENV] = PASSWORDS.operator;
  try {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runStatus(['--servers', url, '--nodes', 'mini-1', '--json'], { out: (s) => void out.push(s), err: (s) => void err.push(s) });
    assert.is(code, 0, err.join(''));
    const rows = (JSON.parse(out.join('')) as { rows: { domain: string; state: string }[] }).rows;
    assert.ok(rows.some((r) => r.domain === 'email' && r.state === 'leading'), JSON.stringify(rows));
  } finally {
    delete process.env[USER_ENV];
    delete process.env[USER_PASSWORD_ENV];
  }
  for (const opts of [{}, { user: 'agent', pass: 'wrong' }]) {
    const refused = await natsConnect({ servers: url, maxReconnectAttempts: 0, ...opts }).then(
      async (nc) => (await nc.close(), 'connected'),
      (e: Error) => e.message,
    );
    assert.match(refused, /Authorization Violation/i);
  }
}

test('a login cluster: no password in the file; agents confined to the memory API; operators run status; strangers refused', async () => {
  const ctx: Ctx = {};
  try {
    await start(ctx);
    configHasNoPassword(ctx);
    await agentIsConfined(ctx);
    await operatorAndStrangers(ctx);
  } finally {
    await stop(ctx);
  }
});

test.run();
