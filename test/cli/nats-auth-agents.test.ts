/**
 * Named agent logins (`shardmind nats-config --auth --agents alice,bob`; decisions §80), on a real nats-server with
 * the generated authorization block and a real host: alice and bob remember and recall through the SDK, which puts
 * their replies under `_INBOX.<login>`; nats-server refuses alice a subscription to every inbox (`_INBOX.>`) or to
 * bob's (`_INBOX.bob.>`), and a publish into bob's inbox; a raw-NATS agent with its login and inbox prefix works;
 * the shared `agent` login still works as before, the CLI's `recall` too.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { connect as natsConnect, headers, type Msg, type NatsConnection } from 'nats';
import { connect } from '../../client/index.ts';
import {
  PASSWORD_ENV,
  USER_ENV,
  USER_PASSWORD_ENV,
  agentPasswordEnv,
  authorizationBlock,
  parseAgentLogins,
  runNatsConfig,
  runRecall,
  startNatsServer,
  type NatsServerProcess,
} from '../../cli/index.ts';
import type { ClusterConfigInput } from '../../config/index.ts';
import { CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE, memSubject } from '../../protocol/index.ts';
import shipped from '../../cluster.config.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';

const password = (): string => `p${randomBytes(12).toString('hex')}`;
const AGENTS = ['alice', 'bob'] as const;
const PASSWORDS = { host: password(), agent: password(), operator: password(), alice: password(), bob: password() };
const ENV: Record<string, string> = {
  ...Object.fromEntries(Object.entries(PASSWORD_ENV).map(([role, env]) => [env, PASSWORDS[role as keyof typeof PASSWORD_ENV]])),
  ...Object.fromEntries(AGENTS.map((login) => [agentPasswordEnv(login), PASSWORDS[login]])),
};

interface Ctx {
  nats?: NatsServerProcess;
  hosts?: HostCluster;
  host?: NatsConnection;
}

function config(url: string): ClusterConfigInput {
  return {
    ...shipped,
    cluster: { name: 'auth-agents-test' },
    nodes: [{ name: 'mini-1', nats: [url] }],
    placement: Object.fromEntries(shipped.domains.map((d) => [d.name, { leader: 'mini-1', standbys: [] }])),
    replication: { replicas: 1, leaseMs: 1500, heartbeatMs: 250 },
  };
}

async function start(ctx: Ctx): Promise<void> {
  // nats-server reads the passwords from its environment (it is spawned with this process's).
  Object.assign(process.env, ENV);
  ctx.nats = await startNatsServer({ authorization: authorizationBlock(parseAgentLogins(AGENTS.join(','))) });
  ctx.hosts = await startHosts({ config: config(ctx.nats.url), env: { [USER_ENV]: 'host', [USER_PASSWORD_ENV]: PASSWORDS.host } });
  ctx.host = await natsConnect({ servers: ctx.nats.url, user: 'host', pass: PASSWORDS.host });
}

async function stop(ctx: Ctx): Promise<void> {
  await ctx.host?.close();
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
  for (const env of Object.keys(ENV)) delete process.env[env];
}

/** A raw connection as `login`, and the permission errors the server reported on it. */
async function raw(ctx: Ctx, login: keyof typeof PASSWORDS, inboxPrefix?: string): Promise<{ nc: NatsConnection; errors: string[] }> {
  const nc = await natsConnect({ servers: ctx.nats!.url, user: login, pass: PASSWORDS[login], ...(inboxPrefix ? { inboxPrefix } : {}) });
  const errors: string[] = [];
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'error') errors.push(String(s.data));
  })();
  return { nc, errors };
}

/** The error the server answers a subscription to `subject` with, or '' when it let it stand (checked by a flush). */
async function subscriptionRefusal(nc: NatsConnection, subject: string): Promise<string> {
  let refusal = '';
  const refused = new Promise<void>((resolve) => {
    nc.subscribe(subject, {
      callback: (err) => {
        if (err) {
          refusal = err.message;
          resolve();
        }
      },
    });
  });
  // The server's -ERR comes before its PONG: a flush sees it if there is one; the race bounds a slow delivery.
  await nc.flush();
  await Promise.race([refused, new Promise((r) => setTimeout(r, 300))]);
  return refusal;
}

/** Resolves when `condition` holds or `ms` have passed, whichever is first. */
async function until(condition: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

async function agentsRememberAndRecall(ctx: Ctx): Promise<void> {
  const url = ctx.nats!.url;
  const alice = await connect({ servers: url, agent: 'alice-agent', user: 'alice', pass: PASSWORDS.alice });
  const bob = await connect({ servers: url, agent: 'bob-agent', user: 'bob', pass: PASSWORDS.bob, direct: true });
  try {
    // The change feed is every agent's to listen to: alice hears bob's write.
    let heard: (text: string) => void = () => {};
    const bobsWrite = new Promise<string>((resolve) => (heard = resolve));
    const stop = alice.watch({ domain: 'calendar' }, (c) => heard(`${c.agent}: ${c.text}`));
    await alice.connection.flush();
    assert.is((await alice.remember({ text: 'The user prefers PDF attachments over links' }, { domain: 'email' })).status, 'created');
    assert.is((await bob.remember({ text: 'The user never takes meetings before 10' }, { domain: 'calendar' })).status, 'created');
    assert.is(await bobsWrite, 'bob-agent: The user never takes meetings before 10');
    stop();
    // The memory itself is shared: each recalls what the other stored (through the router and directly).
    const a = await alice.recall({ query: 'meetings before 10', domain: 'calendar' });
    assert.is(a.facts[0]?.text, 'The user never takes meetings before 10');
    const b = await bob.recall({ query: 'PDF attachments', domain: 'email' });
    assert.is(b.facts[0]?.text, 'The user prefers PDF attachments over links');
  } finally {
    await alice.close();
    await bob.close();
  }
  // An explicit prefix under the login's namespace works too; one outside `_INBOX` is refused before connecting.
  const app = await connect({ servers: url, agent: 'alice-app', user: 'alice', pass: PASSWORDS.alice, inboxPrefix: '_INBOX.alice.app1' });
  try {
    assert.is((await app.recall({ query: 'PDF attachments', domain: 'email' })).facts.length, 1);
  } finally {
    await app.close();
  }
  const wrong = await connect({ servers: url, agent: 'x', user: 'alice', pass: PASSWORDS.alice, inboxPrefix: 'replies.alice' }).then(
    async (c) => (await c.close(), 'connected'),
    (e: Error) => e.message,
  );
  assert.match(wrong, /inboxPrefix: "replies\.alice" is not _INBOX or a subject under it/);
}

async function aliceIsKeptOutOfOtherInboxes(ctx: Ctx): Promise<void> {
  const { nc: alice, errors } = await raw(ctx, 'alice');
  const { nc: bob } = await raw(ctx, 'bob');
  try {
    assert.match(await subscriptionRefusal(alice, '_INBOX.>'), /Permissions Violation for Subscription to "_INBOX\.>"/);
    assert.match(await subscriptionRefusal(alice, '_INBOX.bob.>'), /Permissions Violation for Subscription to "_INBOX\.bob\.>"/);
    assert.is(await subscriptionRefusal(alice, '_INBOX.alice.probe'), '', 'her own namespace is hers');

    // A forged reply: alice publishes into bob's inbox, then the host publishes a marker there. Bob's first message
    // is the marker: the server dropped alice's (it handles her publish before her flush's PONG).
    const seen: string[] = [];
    const marker = new Promise<void>((resolve) => {
      bob.subscribe('_INBOX.bob.probe', {
        callback: (_e, m: Msg) => {
          seen.push(m.string());
          if (m.string() === 'marker') resolve();
        },
      });
    });
    await bob.flush();
    alice.publish('_INBOX.bob.probe', 'forged');
    await alice.flush();
    ctx.host!.publish('_INBOX.bob.probe', 'marker');
    await marker;
    assert.equal(seen, ['marker'], 'bob received no forged reply');
    assert.ok(errors.includes('PERMISSIONS_VIOLATION'), `the server reported the refusals: ${errors.join(', ')}`);
  } finally {
    await alice.close();
    await bob.close();
  }
}

async function rawAgentWithItsPrefix(ctx: Ctx): Promise<void> {
  const h = headers();
  h.set(CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE);
  const body = JSON.stringify({ v: 1, agent: 'py-alice', query: 'PDF attachments', domain: 'email' });
  const { nc } = await raw(ctx, 'alice', '_INBOX.alice');
  try {
    const reply = await nc.request(memSubject('recall'), body, { timeout: 5_000, headers: h });
    const facts = (reply.json() as { facts: { text: string }[] }).facts;
    assert.is(facts[0]?.text, 'The user prefers PDF attachments over links');
  } finally {
    await nc.close();
  }
  // Without the prefix its replies would come to `_INBOX.<random>`, which its login may not read: refused.
  const { nc: plain } = await raw(ctx, 'alice');
  try {
    const outcome = await plain.request(memSubject('recall'), body, { timeout: 2_000, headers: h }).then(
      () => 'answered',
      (e: Error) => e.message,
    );
    assert.match(outcome, /Permissions Violation for Subscription to "_INBOX\./);
  } finally {
    await plain.close();
  }
}

async function sharedAgentLoginStillWorks(ctx: Ctx): Promise<void> {
  const url = ctx.nats!.url;
  const memory = await connect({ servers: url, agent: 'shared', user: 'agent', pass: PASSWORDS.agent });
  try {
    assert.is((await memory.recall({ query: 'PDF attachments', domain: 'email' })).facts.length, 1);
  } finally {
    await memory.close();
  }
  // A plain client with the library's default inbox, as every agent was before named logins.
  const { nc, errors } = await raw(ctx, 'agent');
  try {
    const h = headers();
    h.set(CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE);
    const reply = await nc.request(memSubject('recall'), JSON.stringify({ v: 1, agent: 'shared', query: 'meetings', domain: 'calendar' }), { timeout: 5_000, headers: h });
    assert.is((reply.json() as { facts: unknown[] }).facts.length, 1);
    // The shared login never could publish into an inbox; it still cannot.
    nc.publish('_INBOX.alice.probe', 'forged');
    await nc.flush();
    await until(() => errors.includes('PERMISSIONS_VIOLATION'), 2_000);
    assert.ok(errors.includes('PERMISSIONS_VIOLATION'), `publishing into an inbox was refused: ${errors.join(', ')}`);
  } finally {
    await nc.close();
  }
  // The CLI logs in from the environment, as alice, and gets its answer in her namespace.
  process.env[USER_ENV] = 'alice';
  process.env[USER_PASSWORD_ENV] = PASSWORDS.alice;
  try {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runRecall(['PDF attachments', '--servers', url, '--domain', 'email', '--json'], { out: (s) => void out.push(s), err: (s) => void err.push(s) });
    assert.is(code, 0, err.join(''));
    assert.match(out.join(''), /PDF attachments/);
  } finally {
    delete process.env[USER_ENV];
    delete process.env[USER_PASSWORD_ENV];
  }
}

test('named agent logins: each agent reads only its own replies and cannot forge another\'s; raw agents and the shared login work', async () => {
  const ctx: Ctx = {};
  try {
    await start(ctx);
    await agentsRememberAndRecall(ctx);
    await aliceIsKeptOutOfOtherInboxes(ctx);
    await rawAgentWithItsPrefix(ctx);
    await sharedAgentLoginStillWorks(ctx);
  } finally {
    await stop(ctx);
  }
});

test('nats-config --agents: a user per agent, its password from the environment, its subscriptions its own inboxes', async () => {
  const block = authorizationBlock(parseAgentLogins('alice, mail-agent'));
  assert.match(block, /\{ user: "mail-agent", password: \$SHARDMIND_AGENT_PASSWORD_MAIL_AGENT,\n\s+permissions: \{ publish: \{ allow: \["sm\.mem\.>"/);
  assert.match(block, /subscribe: \{ allow: \["_INBOX\.mail-agent\.>", "sm\.evt\.>"\] \}/);
  assert.match(block, /\{ user: "agent", password: \$SHARDMIND_AGENT_PASSWORD,\n.*subscribe: \{ allow: \["_INBOX\.>", "sm\.evt\.>"\] \}/);
  assert.not.match(block, /publish: \{ allow: \[[^\]]*_INBOX/, 'no login but host publishes into inboxes');
  for (const [list, why] of [
    ['alice,alice', /"alice" is named twice/],
    ['a-b,a_b', /"a-b" and "a_b" would share the password variable \$SHARDMIND_AGENT_PASSWORD_A_B/],
    ['agent', /"agent" is reserved/],
    ['team.alice', /"team\.alice" is not a login/],
    ['Alice', /"Alice" is not a login/],
    [' , ', /name at least one login/],
  ] as const) {
    assert.throws(() => parseAgentLogins(list), why, list);
  }
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s) };
  assert.is(await runNatsConfig(['--node', 'mini-1', '--agents', 'alice'], io), 1, 'without --auth');
  assert.match(err.join(''), /--agents and --no-shared-agent need --auth/);
  err.length = 0;
  assert.is(await runNatsConfig(['--node', 'mini-1', '--auth', '--agents', 'bob.x'], io), 1);
  assert.match(err.join(''), /"bob\.x" is not a login/);
});

test('--no-shared-agent: the server starts without the shared password, refuses the agent login and takes named ones', async () => {
  const env = { ...ENV };
  delete env[PASSWORD_ENV.agent];
  Object.assign(process.env, env);
  assert.throws(() => authorizationBlock([], { sharedAgent: false }), /--no-shared-agent needs --agents/);
  const block = authorizationBlock(['alice'], { sharedAgent: false });
  assert.not.match(block, /user: "agent"/);
  assert.not.match(block, /\$SHARDMIND_AGENT_PASSWORD[,\s]/);
  let nats: NatsServerProcess | undefined;
  try {
    nats = await startNatsServer({ authorization: block });
    const refused = await natsConnect({ servers: nats.url, user: 'agent', pass: PASSWORDS.agent, maxReconnectAttempts: 0 }).then(
      async (nc) => (await nc.close(), 'connected'),
      (e: Error) => e.message,
    );
    assert.match(refused, /Authorization Violation/i);
    const alice = await natsConnect({ servers: nats.url, user: 'alice', pass: PASSWORDS.alice, inboxPrefix: '_INBOX.alice' });
    try {
      assert.is(await subscriptionRefusal(alice, '_INBOX.alice.>'), '');
      assert.match(await subscriptionRefusal(alice, '_INBOX.>'), /Permissions Violation/);
    } finally {
      await alice.close();
    }
  } finally {
    await nats?.destroy();
    for (const name of Object.keys(env)) delete process.env[name];
  }
});

test.run();
