/**
 * `shardmind remember`, `recall`, `history` and `forget` against a real nats-server and a real host process (which
 * runs the router): a fact stored, classified and found again, as text and as JSON; `--as-of` answers what held
 * before a change (as we now know it); history shows both values with when each was true; a forgotten fact leaves recall and
 * its text leaves history; bad flags are usage errors (exit 2) that send nothing; no cluster is exit 1 with the
 * error code.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runForget, runHistory, runRecall, runRemember, startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { connect } from '../../client/index.ts';
import type { ClusterConfigInput } from '../../config/index.ts';
import shipped from '../../cluster.config.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';

interface Ctx {
  nats?: NatsServerProcess;
  hosts?: HostCluster;
}

const t = suite<Ctx>('cli remember / recall');

function config(url: string): ClusterConfigInput {
  return {
    ...shipped,
    cluster: { name: 'cli-memory' },
    nodes: [{ name: 'mini-1', nats: [url] }],
    placement: Object.fromEntries(shipped.domains.map((d) => [d.name, { leader: 'mini-1', standbys: [] }])),
    replication: { replicas: 1, leaseMs: 1500, heartbeatMs: 250 },
  };
}

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s) }, out, err };
}

t.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  ctx.hosts = await startHosts({ config: config(ctx.nats.url) });
});

t.after(async (ctx) => {
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

t('remember then recall, as text and as JSON; --as-of answers what held before a change', async (ctx) => {
  const servers = ['--servers', ctx.nats!.url];
  // The host starts its router once its shards lead: the client's retries cover the moment before.
  const first = capture();
  const stored = await runRemember(
    ['The user prefers PDF attachments over links', '--subject', 'user', '--predicate', 'prefers_attachment_format', '--object', 'pdf', ...servers],
    first.io,
  );
  assert.is(stored, 0, first.err.join(''));
  assert.match(first.out.join(''), /^email: created email:\S+ \(seq \d+\)\n$/);
  const beforeChange = new Date().toISOString();

  const changed = capture();
  assert.is(
    await runRemember(
      ['The user now prefers links to shared files', '--domain', 'email', '--subject', 'user', '--predicate', 'prefers_attachment_format', '--object', 'link', '--json', ...servers],
      changed.io,
    ),
    0,
    changed.err.join(''),
  );
  const reply = JSON.parse(changed.out.join('')) as { domain: string; status: string; superseded: string[] };
  assert.equal([reply.domain, reply.status, reply.superseded.length], ['email', 'superseded_previous', 1]);

  const now = capture();
  assert.is(await runRecall(['attachment or link?', '--domain', 'email', ...servers], now.io), 0, now.err.join(''));
  const text = now.out.join('');
  assert.match(text, /^asked email: 1 fact\n/);
  assert.match(text, /SCORE\s+CONF\s+DOMAIN\s+FACT\s+ID/);
  assert.match(text, /The user now prefers links to shared files/);

  const then = capture();
  assert.is(await runRecall(['--subject', 'user', '--predicate', 'prefers_attachment_format', '--domain', 'email', '--as-of', beforeChange, '--json', ...servers], then.io), 0);
  const past = JSON.parse(then.out.join('')) as { facts: { text: string }[] };
  assert.equal(
    past.facts.map((f) => f.text),
    ['The user prefers PDF attachments over links'],
  );
});

t('history shows every value with when it was true; forget removes a fact from recall and its text from history', async (ctx) => {
  const servers = ['--servers', ctx.nats!.url];
  const history = capture();
  assert.is(await runHistory(['user', '--predicate', 'prefers_attachment_format', '--domain', 'email', '--json', ...servers], history.io), 0, history.err.join(''));
  const facts = JSON.parse(history.out.join('')) as { id: string; text: string; status: string; validTo?: string }[];
  assert.equal(
    facts.map((f) => [f.text, f.status, f.validTo !== undefined]),
    [
      ['The user prefers PDF attachments over links', 'superseded', true],
      ['The user now prefers links to shared files', 'active', false],
    ],
  );
  const table = capture();
  assert.is(await runHistory(['user', '--domain', 'email', ...servers], table.io), 0, table.err.join(''));
  assert.match(table.out.join(''), /^2 facts about user in email\n/);
  assert.match(table.out.join(''), /VALID FROM\s+VALID TO\s+STATUS\s+BY\s+FACT\s+ID/);

  const current = facts[1]!;
  const forget = capture();
  assert.is(await runForget([current.id, ...servers], forget.io), 0, forget.err.join(''));
  assert.match(forget.out.join(''), new RegExp(`^email: forgotten ${current.id} \\(seq \\d+\\)\n$`));
  const again = capture();
  assert.is(await runForget([current.id, ...servers], again.io), 0, again.err.join(''));
  assert.match(again.out.join(''), new RegExp(`^email: forgotten ${current.id} `), 'forgetting twice is harmless');

  const recall = capture();
  assert.is(await runRecall(['links to shared files', '--domain', 'email', '--json', ...servers], recall.io), 0);
  assert.not.ok(recall.out.join('').includes('links to shared files'), 'a forgotten fact is not recalled');
  const after = capture();
  assert.is(await runHistory(['user', '--predicate', 'prefers_attachment_format', '--domain', 'email', '--json', ...servers], after.io), 0);
  assert.not.ok(after.out.join('').includes('links to shared files'), 'its text is gone from history too');

  const unknown = capture();
  assert.is(await runForget(['email:zzzzzzzzzz:0', ...servers], unknown.io), 1);
  assert.match(unknown.err.join(''), /^NOT_FOUND: /);
});

t('history shows the newest --limit facts and says older ones remain; --all reads every page, oldest first', async (ctx) => {
  const servers = ['--servers', ctx.nats!.url];
  const agent = await connect({ servers: ctx.nats!.url, agent: 'cli-history-test' });
  try {
    // 1,205 facts about one subject: more than a page of 1000, so --all needs two pages.
    const texts = Array.from({ length: 1205 }, (_, i) => `Project atlas note number ${String(i).padStart(4, '0')}`);
    await agent.rememberMany(texts.map((text, i) => ({ text, subject: 'atlas', predicate: 'note', object: `n${i}`, validFrom: new Date(Date.UTC(2026, 0, 1) + i * 60_000) })), { domain: 'files' });
  } finally {
    await agent.close();
  }
  const limited = capture();
  assert.is(await runHistory(['atlas', '--domain', 'files', '--limit', '5', ...servers], limited.io), 0, limited.err.join(''));
  assert.match(limited.out.join(''), /^5 facts about atlas in files\n/);
  assert.match(limited.out.join(''), /note number 1204/, 'the most recently recorded');
  assert.match(limited.out.join(''), /older facts remain: --limit up to 1000, or --all\n$/);

  const all = capture();
  assert.is(await runHistory(['atlas', '--domain', 'files', '--all', '--json', ...servers], all.io), 0, all.err.join(''));
  const facts = JSON.parse(all.out.join('')) as { text: string }[];
  assert.is(facts.length, 1205);
  assert.equal(facts.map((f) => f.text), Array.from({ length: 1205 }, (_, i) => `Project atlas note number ${String(i).padStart(4, '0')}`), 'each once, oldest first');

  const bad = capture();
  assert.is(await runHistory(['atlas', '--domain', 'files', '--limit', '1001', ...servers], bad.io), 2);
  assert.match(bad.err.join(''), /--limit: "1001" must be an integer in 1..1000/);
  const both = capture();
  assert.is(await runHistory(['atlas', '--domain', 'files', '--limit', '5', '--all', ...servers], both.io), 2);
  assert.match(both.err.join(''), /--all and --limit: give one of them/);
});

t('bad flags are usage errors that send nothing; an unreachable cluster is exit 1 with the error', async (ctx) => {
  const servers = ['--servers', ctx.nats!.url];
  for (const [run, args, why] of [
    [runRemember, [...servers], /TEXT: the fact to remember is required/],
    [runRemember, ['x', '--confidence', '7', ...servers], /--confidence: "7" must be a number in \(0, 1\]/],
    [runRecall, [...servers], /QUERY or --subject/],
    [runRecall, ['x', '--as-of', 'yesterday', ...servers], /--as-of: "yesterday" is not an ISO 8601 time with a zone/],
    [runRecall, ['x', '--as-of', '2026-11-24T23:00:00', ...servers], /--as-of: "2026-11-24T23:00:00" is not an ISO 8601 time with a zone/],
    [runRecall, ['x', '--limit', '0', ...servers], /--limit: "0" must be an integer in 1..1000/],
    [runRecall, ['x', '--bogus', ...servers], /Unknown option '--bogus'/],
    [runHistory, ['user', ...servers], /--domain: history reads one domain/],
    [runHistory, ['--domain', 'email', ...servers], /SUBJECT: whose history to show is required/],
    [runForget, [...servers], /FACT_ID: the fact to forget is required/],
  ] as const) {
    const c = capture();
    assert.is(await run([...args], c.io), 2, `${args.join(' ')} → exit 2`);
    assert.match(c.err.join(''), why);
  }
  const nowhere = capture();
  assert.is(await runRecall(['anything', '--servers', 'nats://127.0.0.1:1'], nowhere.io), 1);
  assert.match(nowhere.err.join(''), /^UNAVAILABLE: cannot connect to NATS/);
});

t.run();
