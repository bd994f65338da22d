/**
 * `shardmind remember` and `shardmind recall` against a real nats-server and a real host process (which runs the
 * router): a fact stored, classified and found again, as text and as JSON; `--as-of` answers what was believed
 * before a change; bad flags are usage errors (exit 2) that send nothing; no cluster is exit 1 with the error code.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runRecall, runRemember, startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
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

t('remember then recall, as text and as JSON; --as-of answers what was believed before a change', async (ctx) => {
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

t('bad flags are usage errors that send nothing; an unreachable cluster is exit 1 with the error', async (ctx) => {
  const servers = ['--servers', ctx.nats!.url];
  for (const [run, args, why] of [
    [runRemember, [...servers], /TEXT: the fact to remember is required/],
    [runRemember, ['x', '--confidence', '7', ...servers], /--confidence: "7" must be a number in 0..1/],
    [runRecall, [...servers], /QUERY or --subject/],
    [runRecall, ['x', '--as-of', 'yesterday', ...servers], /--as-of: "yesterday" is not a date/],
    [runRecall, ['x', '--limit', '0', ...servers], /--limit: "0" must be an integer in 1..1000/],
    [runRecall, ['x', '--bogus', ...servers], /Unknown option '--bogus'/],
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
