/**
 * Hosts answer only client inboxes (decisions §69; review session 12, H1). A login cluster (`nats-config --auth`):
 * a real nats-server with the generated authorization block, two real host processes logged in as `host` (mini-1
 * leads every domain, mini-2 follows and serves replica reads). An `agent` may not publish to JetStream's API, the
 * epoch bucket or a shard's log itself — and must not get a host to do it for it by naming one of those as the
 * reply subject of a request, or as the `sm-reply-to` of a shard or replica request. Before the fix the router
 * purged the email log for one such request (the reviewer's reproduction, the first attack below).
 *
 * The legitimate paths still answer under the same login: the SDK, the router's hand-off to the shard (its reply
 * comes from the shard with the router's header), a replica read, a JSON request as nats-py and `nats req` make.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { connect as natsConnect, createInbox, headers, type Msg, type MsgHdrs, type NatsConnection } from 'nats';
import { connect } from '../../client/index.ts';
import { PASSWORD_ENV, USER_ENV, USER_PASSWORD_ENV, authorizationBlock, startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import type { ClusterConfigInput } from '../../config/index.ts';
import {
  CONTENT_TYPE_HEADER,
  EPOCH_BUCKET,
  JSON_CONTENT_TYPE,
  REPLY_TO_HEADER,
  ROUTER_NODE_HEADER,
  decodePayload,
  encodePayload,
  logStream,
  logSubject,
  memSubject,
  replicaNodeSubject,
  replicaSubject,
  shardSubject,
} from '../../protocol/index.ts';
import shipped from '../../cluster.config.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';

const password = (): string => `p${randomBytes(12).toString('hex')}`;
const PASSWORDS = { host: password(), agent: password(), operator: password() };
const PURGE = `$JS.API.STREAM.PURGE.${logStream('email')}`;
const FORGED_EPOCH_KEYS = ['email.4242', 'email.4343', 'email.4444', 'email.4545'];

function config(url: string): ClusterConfigInput {
  return {
    ...shipped,
    cluster: { name: 'reply-subject-test' },
    nodes: [
      { name: 'mini-1', nats: [url] },
      // Credentials in the URL, as nats.js takes them: the host's start-up line must not print the password.
      { name: 'mini-2', nats: [url.replace('nats://', `nats://host:${PASSWORDS.host}@`)] },
    ],
    placement: Object.fromEntries(shipped.domains.map((d) => [d.name, { leader: 'mini-1', standbys: ['mini-2'] }])),
    replication: { replicas: 1, leaseMs: 1500, heartbeatMs: 250 },
  };
}

const jsonHeaders = (replyTo?: string): MsgHdrs => {
  const h = headers();
  h.set(CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE);
  if (replyTo !== undefined) h.set(REPLY_TO_HEADER, replyTo);
  return h;
};
const json = (o: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(o));
const recall = { v: 1, query: 'bank PIN', text: 'bank PIN', limit: 1 };

/** Polls `cond` until it holds or `ms` pass; says which. */
async function within(ms: number, cond: () => boolean): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

test('an agent cannot make a host publish to JetStream, the epoch bucket or a log by naming it as a reply subject', async () => {
  let nats: NatsServerProcess | undefined;
  let hosts: HostCluster | undefined;
  const conns: NatsConnection[] = [];
  for (const [role, env] of Object.entries(PASSWORD_ENV)) process.env[env] = PASSWORDS[role as keyof typeof PASSWORDS];
  try {
    nats = await startNatsServer({ authorization: authorizationBlock() });
    hosts = await startHosts({ config: config(nats.url), env: { [USER_ENV]: 'host', [USER_PASSWORD_ENV]: PASSWORDS.host } });
    const host = await natsConnect({ servers: nats.url, user: 'host', pass: PASSWORDS.host });
    const attacker = await natsConnect({ servers: nats.url, user: 'agent', pass: PASSWORDS.agent, name: 'attacker' });
    conns.push(host, attacker);

    // What an agent on `_INBOX.>` (its permitted inboxes) sees of the hosts' own traffic while a victim writes.
    const sniffed: string[] = [];
    attacker.subscribe('_INBOX.>', { callback: (_e, m) => sniffed.push(`${m.subject} ${new TextDecoder().decode(m.data).slice(0, 80)}`) });
    await attacker.flush();
    const victim = await connect({ servers: nats.url, agent: 'victim', user: 'agent', pass: PASSWORDS.agent });
    try {
      assert.is((await victim.remember({ text: 'the bank PIN is kept in the safe' }, { domain: 'email' })).status, 'created');
      assert.is((await victim.recall({ query: 'bank PIN', domain: 'email' })).facts[0]?.text, 'the bank PIN is kept in the safe');
    } finally {
      await victim.close();
    }
    assert.not.ok(
      sniffed.some((s) => s.includes(logStream('email')) || s.includes('sm.log.')),
      `a host's JetStream acks and log deliveries are off the agents' inboxes:\n${sniffed.join('\n')}`,
    );

    const jsm = await host.jetstreamManager({ checkAPI: false });
    const before = (await jsm.streams.info(logStream('email'))).state;
    assert.ok(before.messages >= 1, 'the victim’s write is in the log');
    const epochs = await host.jetstream().views.kv(EPOCH_BUCKET);

    // The attacks: the reply subject itself, then the hand-off header, on each service an agent may reach.
    const attack = (subject: string, reply: string, replyTo?: string): void =>
      attacker.publish(subject, json(recall), { headers: jsonHeaders(replyTo), reply });
    // mini-2's own replica subject: a replica read could otherwise be served by the leader's replica reads.
    const mini2Replica = replicaNodeSubject('email', 'recall', 'mini-2');
    attack(memSubject('recall'), PURGE);
    attack(memSubject('classify'), logSubject('email'));
    attack(shardSubject('email', 'recall'), `$KV.${EPOCH_BUCKET}.${FORGED_EPOCH_KEYS[0]}`);
    attack(mini2Replica, `$KV.${EPOCH_BUCKET}.${FORGED_EPOCH_KEYS[1]}`);
    attack(shardSubject('email', 'recall'), '_INBOX.attacker.a', `$KV.${EPOCH_BUCKET}.${FORGED_EPOCH_KEYS[2]}`);
    attack(shardSubject('email', 'recall'), '_INBOX.attacker.b', logSubject('email'));
    attack(mini2Replica, '_INBOX.attacker.c', `$KV.${EPOCH_BUCKET}.${FORGED_EPOCH_KEYS[3]}`);
    attack(shardSubject('email', 'recall'), '_INBOX.attacker.d', PURGE);
    // The shard guard's refusals (UNKNOWN_DOMAIN), which any host may send.
    attack(shardSubject('nosuch', 'recall'), PURGE);
    attack(replicaSubject('nosuch', 'recall'), PURGE);
    await attacker.flush();

    // Each service saw its attacks before the requests below (one connection, in order), and reported them.
    for (const subject of [memSubject('recall'), shardSubject('email', 'recall'), mini2Replica]) {
      const m = await attacker.request(subject, json(recall), { timeout: 5_000, headers: jsonHeaders() });
      assert.ok(Array.isArray((JSON.parse(new TextDecoder().decode(m.data)) as { facts?: unknown }).facts), `${subject} still answers an inbox`);
    }
    // The router (either host's), the leader's shard and mini-2's replica each report what they left unanswered.
    const reported = (): boolean =>
      /router: left \d+ request/.test(hosts!.stderr()) &&
      /shardmind host: left \d+ request/.test(hosts!.host('mini-1').stderr()) &&
      /shardmind host: left \d+ request/.test(hosts!.host('mini-2').stderr());
    const wasReported = await within(5_000, reported);

    const after = (await jsm.streams.info(logStream('email'))).state;
    assert.is(after.messages, before.messages, 'the log was not purged');
    assert.is(after.last_seq, before.last_seq, 'nothing was appended to the log');
    for (const key of FORGED_EPOCH_KEYS) assert.is(await epochs.get(key), null, `no epoch claim ${key} was written`);
    const email = await hosts.host('mini-1').shard('email');
    assert.is(email?.state, 'leading');
    assert.is(email?.epoch, 1, 'the leader was not deposed');
    assert.not.ok(hosts.stderr().includes(PASSWORDS.host), 'no password in the hosts’ log');
    assert.match(hosts.host('mini-2').stderr(), 'via nats://host:***@127.0.0.1:');
    assert.ok(wasReported, `the hosts reported the unanswered requests:\n${hosts.stderr().slice(-3_000)}`);

    // The legitimate paths under the same login.
    const agent = await natsConnect({ servers: nats.url, user: 'agent', pass: PASSWORDS.agent });
    conns.push(agent);
    const handedOff = await agent.request(memSubject('recall'), encodePayload({ v: 1, query: 'bank PIN', domain: 'email' }, 'msgpack'), { timeout: 5_000 });
    assert.match(handedOff.headers?.get(ROUTER_NODE_HEADER) ?? '', /^mini-[12]$/, 'the router’s hand-off: the shard answers the agent with the router’s name');
    assert.is((decodePayload(handedOff.data, 'msgpack') as { facts: { text: string }[] }).facts[0]?.text, 'the bank PIN is kept in the safe');
    const replica = await agent.request(replicaSubject('email', 'recall'), encodePayload({ v: 1, query: 'bank PIN' }, 'msgpack'), { timeout: 5_000 });
    assert.match((decodePayload(replica.data, 'msgpack') as { servedBy?: string }).servedBy ?? '', /^mini-[12]$/, 'a replica read answers');
    // As nats-py or `nats req` would ask: a JSON request with the client library's own inbox.
    const inbox = createInbox();
    const got = new Promise<Msg>((resolve) => agent.subscribe(inbox, { max: 1, callback: (_e, m) => resolve(m) }));
    agent.publish(memSubject('recall'), json({ v: 1, query: 'bank PIN' }), { headers: jsonHeaders(), reply: inbox });
    const plain = await got;
    assert.ok((JSON.parse(new TextDecoder().decode(plain.data)) as { facts: unknown[] }).facts.length > 0);
  } finally {
    for (const nc of conns) await nc.close().catch(() => undefined);
    await hosts?.stop();
    await nats?.destroy();
    for (const env of Object.values(PASSWORD_ENV)) delete process.env[env];
  }
});

test.run();
