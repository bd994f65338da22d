/**
 * Where the router sends a write without `domain` whose predicate the cluster config declares, and which domains a
 * recall without `domain` asks when it has no text to classify. Real nats-server, one real `shardmind host` with the
 * shipped `cluster.config.ts`'s domains (seeds and predicate specs) on one Mini.
 *
 * - walkthrough-session12 F10: "The user now prefers links", sent without a domain after the classifier had learned
 *   calendar sentences about what the user prefers, was filed in calendar while `prefers_attachment_format` (a `one`
 *   predicate) is declared under email: two active values, and the email agent still saw "pdf". A predicate declared
 *   by exactly one domain now routes the write there; by several, the task's domain or the classifier's best among
 *   them; by none, the task or the classifier as before. An explicit `domain` always wins.
 * - F17: `recall({ subject: 'user' })` asked one domain, chosen by classifying the word "user". A recall with no
 *   query text (or none the classifier knows a word of) asks every domain, or the domains that declare its
 *   `predicate` filter.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, type NatsConnection } from 'nats';
import shipped from '../../cluster.config.ts';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import type { ClusterConfigInput } from '../../config/index.ts';
import { decodePayload, encodePayload, memSubject } from '../../protocol/index.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';
import { routerReady } from '../harness/router-ready.ts';

const NODE = 'mini-1';
const DOMAINS = shipped.domains.map((d) => d.name);
/** Declared by two domains in this test's config (not in the shipped one): the several-owners rule. */
const SHARED_PREDICATE = 'preferred_language';

/** The shipped domains on one Mini, one replica; email and files also declare `preferred_language`. */
function shippedOnOneMini(natsUrl: string): ClusterConfigInput {
  return {
    cluster: { name: 'test' },
    nodes: [{ name: NODE, nats: [natsUrl] }],
    domains: shipped.domains.map((d) =>
      d.name === 'email' || d.name === 'files'
        ? { ...d, predicates: { ...d.predicates, [SHARED_PREDICATE]: { cardinality: 'one', halfLifeDays: 90 } } }
        : d,
    ),
    placement: Object.fromEntries(DOMAINS.map((d) => [d, { leader: NODE, standbys: [] }])),
    replication: { replicas: 1 },
  };
}

interface Ctx {
  nats?: NatsServerProcess;
  hosts?: HostCluster;
  nc?: NatsConnection;
}

const t = suite<Ctx>('router: a write goes to the domain that declares its predicate; a recall with no text asks every domain');

async function ask(nc: NatsConnection, op: string, body: unknown): Promise<Record<string, any>> {
  const msg = await nc.request(memSubject(op), encodePayload(body, 'msgpack'), { timeout: 8_000 });
  return decodePayload(msg.data, 'msgpack') as Record<string, any>;
}

function ok(reply: Record<string, any>, what: string): Record<string, any> {
  assert.not.ok(reply['error'], `${what}: ${JSON.stringify(reply['error'])}`);
  return reply;
}

async function topDomain(nc: NatsConnection, text: string): Promise<string> {
  return ok(await ask(nc, 'classify', { v: 1, text }), 'classify')['domains'][0].domain;
}

let opIds = 0;
const opId = (): string => `predicate-routing-${Date.now()}-${opIds++}`;

/** The email shard's sequence after the attachment preference was written (read-your-writes for the recalls). */
let pdfSeq = 0;

t.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  ctx.hosts = await startHosts({ config: shippedOnOneMini(ctx.nats.url) });
  ctx.nc = await connect({ servers: ctx.nats.url });
  await routerReady(ctx.nc);
  // The walkthrough's state: the mail agent stored the preference in email (teaching the classifier that sentence),
  // then the calendar agent wrote calendar facts about what the user now prefers, with an explicit domain: labelled
  // examples every router learns from, until "The user now prefers links" classifies as calendar.
  const pdf = ok(
    await ask(ctx.nc, 'remember', {
      v: 1,
      agent: 'mail-agent',
      domain: 'email',
      opId: opId(),
      fact: { text: 'The user prefers PDF attachments over links', subject: 'user', predicate: 'prefers_attachment_format', object: 'pdf' },
    }),
    'remember pdf',
  );
  pdfSeq = pdf['seq'];
  const calendarSentences = [
    'The user now prefers morning meetings',
    'The user now prefers Zoom links for calls',
    'The user now prefers 25 minute meetings',
    'The user now prefers short meetings',
    'The user now prefers calls over links',
    'The user now prefers meetings with links to the agenda',
  ];
  for (const text of calendarSentences) {
    ok(await ask(ctx.nc, 'remember', { v: 1, agent: 'calendar-agent', domain: 'calendar', opId: opId(), fact: { text } }), 'teach calendar');
    // Each example reaches the classifier through the shared stream, a moment after its write's reply.
    const deadline = Date.now() + 2_000;
    while (Date.now() < deadline && (await topDomain(ctx.nc, 'The user now prefers links')) !== 'calendar') await new Promise((r) => setTimeout(r, 50));
    if ((await topDomain(ctx.nc, 'The user now prefers links')) === 'calendar') return;
  }
  throw new Error('the classifier never put "The user now prefers links" in calendar');
});

t.after(async (ctx) => {
  await ctx.nc?.close();
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

t('a correction of a one-valued predicate declared by one domain supersedes there, whatever the classifier says (F10)', async (ctx) => {
  const nc = ctx.nc!;
  assert.is(await topDomain(nc, 'The user now prefers links'), 'calendar', 'the repro needs the classifier to prefer calendar');
  // Sent without a domain, as the MCP tool and the README's first example do; once with the agent's opId (pinned)
  // and once without.
  for (const [object, id] of [['link', opId()], ['pdf', undefined]] as const) {
    const reply = ok(
      await ask(nc, 'remember', {
        v: 1,
        agent: 'desktop',
        ...(id ? { opId: id } : {}),
        fact: { text: `The user now prefers ${object === 'link' ? 'links' : 'PDFs again'}`, subject: 'user', predicate: 'prefers_attachment_format', object },
      }),
      `remember ${object}`,
    );
    assert.is(reply['domain'], 'email', JSON.stringify(reply));
    assert.is(reply['status'], 'superseded_previous', JSON.stringify(reply));
  }
  const everywhere = ok(
    await ask(nc, 'recall', { v: 1, subject: 'user', predicate: 'prefers_attachment_format', domain: DOMAINS, minSeq: { email: pdfSeq } }),
    'recall everywhere',
  );
  const values = everywhere['facts'].map((f: Record<string, any>) => [f['domain'], f['object']]);
  assert.equal(values, [['email', 'pdf']], 'one active value, in email');
});

t('remember_batch routes each item by its predicate; an undeclared predicate goes by the classifier; a named domain wins', async (ctx) => {
  const nc = ctx.nc!;
  const undeclaredText = 'The user now prefers links in the footer';
  const classified = await topDomain(nc, undeclaredText);
  const reply = ok(
    await ask(nc, 'remember_batch', {
      v: 1,
      agent: 'importer',
      items: [
        // Calendar's classifier words, email's predicate.
        { opId: opId(), fact: { text: 'After the meeting on Monday the user signs emails as Sam', subject: 'user', predicate: 'signs_emails_as', object: 'Sam' } },
        // Email's words, calendar's predicate.
        { opId: opId(), fact: { text: 'Reply to the email: the user works in Berlin time', subject: 'user', predicate: 'works_in_timezone', object: 'Europe/Berlin' } },
        // Declared nowhere: the classifier decides.
        { opId: opId(), fact: { text: undeclaredText, subject: 'user', predicate: 'likes_link_style', object: 'short' } },
        { opId: opId(), fact: { text: 'Reply to the email from Bob: the report is kept in Shared', subject: 'report', predicate: 'stored_in', object: 'Shared' } },
      ],
    }),
    'remember_batch',
  );
  assert.equal(
    reply['results'].map((r: Record<string, any>) => r['domain']),
    ['email', 'calendar', classified, 'files'],
    JSON.stringify(reply['results']),
  );
  // A lone remember of an undeclared predicate, and one naming its domain against the predicate's home.
  const lone = ok(await ask(nc, 'remember', { v: 1, agent: 'a', fact: { text: undeclaredText, subject: 'bob', predicate: 'likes_link_style', object: 'long' } }), 'remember');
  assert.is(lone['domain'], classified);
  const named = ok(
    await ask(nc, 'remember', { v: 1, agent: 'a', domain: 'files', fact: { text: 'Bob prefers zip files', subject: 'bob', predicate: 'prefers_attachment_format', object: 'zip' } }),
    'remember named',
  );
  assert.is(named['domain'], 'files');
});

t('with a task, a predicate declared by one domain still goes there; an undeclared one goes to the task; several owners: the task if it owns it, else the classifier among them', async (ctx) => {
  const nc = ctx.nc!;
  const task = ok(await ask(nc, 'task.begin', { v: 1, agent: 'planner', text: 'book a meeting with Alice next Tuesday at 3pm' }), 'task.begin');
  assert.is(task['domain'], 'calendar');
  const write = async (fact: object, extra: object = {}): Promise<string> =>
    ok(await ask(nc, 'remember', { v: 1, agent: 'planner', task: task['task'], opId: opId(), fact, ...extra }), 'remember in task')['domain'];
  assert.is(await write({ text: 'Alice wants the agenda as a link', subject: 'alice', predicate: 'prefers_attachment_format', object: 'link' }), 'email');
  assert.is(await write({ text: 'Alice wants the agenda as a link', subject: 'alice', predicate: 'likes_link_style', object: 'short' }), 'calendar');
  // Owned by email and files, not by the task's calendar: the classifier's best of the two, although it puts the
  // text in calendar first.
  const sharedText = 'After the meeting on Monday Alice signs emails in German';
  const distribution = ok(await ask(nc, 'classify', { v: 1, text: sharedText }), 'classify')['domains'] as { domain: string }[];
  assert.is(distribution[0]!.domain, 'calendar', JSON.stringify(distribution));
  const bestOwner = distribution.find((p) => p.domain === 'email' || p.domain === 'files')!.domain;
  assert.is(await write({ text: sharedText, subject: 'alice', predicate: SHARED_PREDICATE, object: 'de' }), bestOwner);
  const emailTask = ok(await ask(nc, 'task.begin', { v: 1, agent: 'planner', text: 'reply to the email from the landlord' }), 'task.begin');
  assert.is(emailTask['domain'], 'email');
  const inEmail = ok(
    await ask(nc, 'remember', {
      v: 1,
      agent: 'planner',
      task: emailTask['task'],
      opId: opId(),
      fact: { text: 'The landlord keeps his spreadsheet folder in French', subject: 'landlord', predicate: SHARED_PREDICATE, object: 'fr' },
    }),
    'remember in email task',
  );
  assert.is(inEmail['domain'], 'email', 'the task owns the predicate');
  // The task's history names the domain the fact went to.
  const got = ok(await ask(nc, 'task.get', { v: 1, task: task['task'] }), 'task.get');
  const remembered = got['history'].filter((h: Record<string, any>) => h['kind'] === 'remember');
  assert.ok(
    remembered.some((h: Record<string, any>) => h['domain'] === 'email' && String(h['factId']).startsWith('email:')),
    `the task notes the fact filed in email: ${JSON.stringify(got['history'])}`,
  );
});

t('a recall with a subject and no text asks every domain; with a declared predicate, the domains that declare it (F17)', async (ctx) => {
  const nc = ctx.nc!;
  // "standup" is a calendar word: classified, the subject alone asked calendar only.
  const cal = ok(
    await ask(nc, 'remember', {
      v: 1,
      agent: 'calendar-agent',
      domain: 'calendar',
      opId: opId(),
      fact: { text: 'The standup starts at 9:30', subject: 'standup', predicate: 'starts_at', object: '09:30' },
    }),
    'remember calendar',
  );
  const mail = ok(
    await ask(nc, 'remember', {
      v: 1,
      agent: 'mail-agent',
      domain: 'email',
      opId: opId(),
      fact: { text: 'Standup notes are signed as The Team', subject: 'standup', predicate: 'signs_emails_as', object: 'The Team' },
    }),
    'remember email',
  );
  const minSeq = { calendar: cal['seq'], email: mail['seq'] };
  const all = [...DOMAINS].sort();
  const bySubject = ok(await ask(nc, 'recall', { v: 1, subject: 'standup', minSeq }), 'recall by subject');
  assert.equal([...bySubject['domains']].sort(), all, JSON.stringify(bySubject['domains']));
  assert.equal(bySubject['facts'].map((f: Record<string, any>) => f['domain']).sort(), ['calendar', 'email']);
  // A query with no word the classifier knows says nothing either.
  const unknownWords = ok(await ask(nc, 'recall', { v: 1, subject: 'standup', query: 'zqx vlorp', minSeq }), 'recall unknown words');
  assert.equal([...unknownWords['domains']].sort(), all, JSON.stringify(unknownWords['domains']));
  const byPredicate = ok(await ask(nc, 'recall', { v: 1, subject: 'standup', predicate: 'signs_emails_as', minSeq }), 'recall by predicate');
  assert.equal(byPredicate['domains'], ['email']);
  assert.equal(byPredicate['facts'].map((f: Record<string, any>) => f['object']), ['The Team']);
  const undeclared = ok(await ask(nc, 'recall', { v: 1, subject: 'standup', predicate: 'starts_at', minSeq }), 'recall undeclared predicate');
  assert.equal([...undeclared['domains']].sort(), all, JSON.stringify(undeclared['domains']));
  assert.equal(undeclared['facts'].map((f: Record<string, any>) => f['object']), ['09:30']);
  // A query the classifier reads keeps its fan-out, and the predicate's home is asked too (calendar's words, email's
  // predicate).
  const both = ok(
    await ask(nc, 'recall', { v: 1, query: 'what time is the standup meeting on Monday', subject: 'standup', predicate: 'signs_emails_as', minSeq }),
    'recall query and predicate',
  );
  assert.ok(both['domains'].includes('email') && both['domains'].includes('calendar'), JSON.stringify(both['domains']));
  assert.equal(both['facts'].map((f: Record<string, any>) => f['object']), ['The Team']);
  assert.ok(Array.isArray(both['classification']), 'a classified recall says why');
});

t.run();
