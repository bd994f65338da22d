/**
 * The story `npm run demo` tells, told by three agents on three Minis through the TypeScript client — and checked:
 * every claim the narration makes is asserted, and a wrong ending throws `StoryError` (the demo then exits
 * non-zero). The agents never name a domain: the router classifies, fans out, and moves the task.
 */
import { connect, type ShardmindClient } from '../client/index.ts';
import type { Mini, Minis } from './minis.ts';

export class StoryError extends Error {
  override readonly name = 'StoryError';
}

export interface Narrator {
  chapter(title: string): void;
  say(who: string, line: string): void;
  detail(line: string): void;
  ok(claim: string): void;
}

function check(condition: unknown, claim: string, evidence: unknown): asserts condition {
  if (!condition) throw new StoryError(`${claim} — but it did not happen:\n${JSON.stringify(evidence, null, 2)}`);
}

const quote = (s: string): string => `“${s}”`;

export async function tellStory(minis: Minis, n: Narrator): Promise<void> {
  const agents: ShardmindClient[] = [];
  const agent = async (name: string, mini: Mini): Promise<ShardmindClient> => {
    // Generous waits: the demo may run on a busy laptop, and a timed-out task step is not retried (it may have happened).
    const c = await connect({ servers: minis.urls.get(mini)!, agent: name, node: mini, timeoutMs: 8_000, deadlineMs: 30_000 });
    agents.push(c);
    return c;
  };
  try {
    const a = await agent('agent-a', 'mini-1');
    const b = await agent('agent-b', 'mini-3');
    const c = await agent('agent-c', 'mini-2');

    n.chapter('1. A preference learned on mini-1 is used on mini-3');
    const pdfText = 'The user prefers PDF attachments over links';
    const pdf = await a.remember({ text: pdfText, subject: 'user', predicate: 'prefers_attachment_format', object: 'pdf', confidence: 0.9 });
    n.say('Agent A @ mini-1', `remembers ${quote(pdfText)}`);
    n.detail(`the router filed it under ${pdf.domain} (fact ${pdf.factId}, ${pdf.status})`);
    check(pdf.domain === 'email', 'the router files an attachment preference under email', pdf);
    const beforeChange = new Date();

    const question = 'Send Bob the Q3 report: attachment or link?';
    const answer = await b.recall({ query: question });
    n.say('Agent B @ mini-3', `asks ${quote(question)}`);
    n.detail(`the router asked ${answer.domains.join(' + ')}; best answer: ${quote(answer.facts[0]?.text ?? '(nothing)')}`);
    check(answer.domains.includes('email'), 'the recall reaches the email shard', answer);
    check(answer.facts[0]?.text === pdfText, 'Agent B gets the PDF preference first', answer.facts);
    n.ok('Agent B on mini-3 attaches a PDF, as the user likes, though only Agent A on mini-1 was told');

    n.chapter('2. A rule about meetings, learned in passing');
    const ruleText = 'The user never takes meetings before 10am';
    const rule = await a.remember({ text: ruleText, subject: 'user', predicate: 'earliest_meeting_time', object: '10:00', confidence: 0.95 });
    n.say('Agent A @ mini-1', `remembers ${quote(ruleText)}`);
    n.detail(`filed under ${rule.domain}`);
    check(rule.domain === 'calendar', 'the meeting rule is filed under calendar', rule);
    n.ok('the calendar shard (led by mini-1, replicated to mini-2 and mini-3) holds the rule');

    n.chapter('3. An email that turns out to be a meeting request');
    const opening = "Reply to Dana's email about the Q3 report";
    const task = await c.task.begin(opening);
    n.say('Agent C @ mini-2', `starts a task: ${quote(opening)}`);
    n.detail(`task ${task.task} begins in ${task.domain}`);
    check(task.domain === 'email', 'the task starts as an email task', task);

    const hint = 'Dana would rather meet in person next week to go over it';
    const first = await c.task.observe(task.task, hint);
    n.say('Agent C @ mini-2', `observes ${quote(hint)}`);
    n.detail(`still ${first.domain}: one sentence is not enough evidence to move a task`);
    check(first.rerouted === null && first.domain === 'email', 'one meeting-ish sentence does not move the task', first);

    const ask = 'Find a 30 minute slot on Tuesday or Wednesday and send her an invite';
    const second = await c.task.observe(task.task, ask);
    n.say('Agent C @ mini-2', `observes ${quote(ask)}`);
    n.detail(`re-routed ${second.rerouted?.from} → ${second.rerouted?.to}; the calendar brings along:`);
    for (const f of second.context) n.detail(`  • ${f.text}`);
    check(second.rerouted?.from === 'email' && second.rerouted.to === 'calendar', 'the task re-routes from email to calendar', second);
    check(second.context.some((f) => f.text === ruleText), 'entering calendar brings the 10am rule', second.context);
    n.ok('Agent C knows, without asking, that the slot must be at 10am or later');

    const booked = await c.remember({ text: 'Meeting with Dana about the Q3 report booked for Tuesday at 11am' }, { task: task.task });
    n.say('Agent C @ mini-2', `books Tuesday 11am and remembers it in the task → ${booked.domain}`);
    check(booked.domain === 'calendar', "a fact remembered in the task goes to the task's current domain", booked);
    const recap = await c.recall({ query: 'Dana Q3 report', task: task.task });
    n.detail(`recall in the task asks ${recap.domains.join(' then ')} (every domain the task has been in)`);
    check(recap.domains[0] === 'calendar' && recap.domains.includes('email'), 'the task recalls from calendar first, then email', recap);
    await c.task.end(task.task);
    n.ok('the task ended in calendar; what it learned in email is still reachable from it');

    n.chapter('4. The user changes their mind; the past stays on record');
    const linkText = 'The user now prefers links to shared files instead of attachments';
    const link = await b.remember({ text: linkText, subject: 'user', predicate: 'prefers_attachment_format', object: 'link', confidence: 0.9 });
    n.say('Agent B @ mini-3', `remembers ${quote(linkText)}`);
    n.detail(`filed under ${link.domain}: ${link.status}${link.superseded.length ? ` (closes ${link.superseded.join(', ')})` : ''}`);
    check(link.domain === 'email' && link.status === 'superseded_previous', 'the new preference supersedes the old one', link);

    const now = await a.recall({ subject: 'user', predicate: 'prefers_attachment_format', domain: 'email' });
    n.say('Agent A @ mini-1', 'asks what the user prefers now');
    n.detail(`→ ${quote(now.facts[0]?.text ?? '(nothing)')}`);
    check(now.facts.length === 1 && now.facts[0]!.text === linkText, 'now only the link preference is believed', now.facts);

    const then = await a.recall({ subject: 'user', predicate: 'prefers_attachment_format', domain: 'email', asOf: beforeChange });
    n.say('Agent A @ mini-1', `asks what was believed at ${beforeChange.toISOString()}`);
    n.detail(`→ ${quote(then.facts[0]?.text ?? '(nothing)')}`);
    check(then.facts.length === 1 && then.facts[0]!.text === pdfText, 'asOf the earlier time, the PDF preference is what was believed', then.facts);
    n.ok('the old belief is superseded, not deleted: history still answers "what did we believe then?"');

    n.chapter('5. mini-1 restarts for an upgrade; nobody notices');
    // A follower answers reads once it has heard the leader's heartbeat; the story so far took well under a second.
    await minis.replicaBound('mini-3', 'calendar');
    const local = await b.recall({ query: 'can I book a meeting at 9am?', domain: 'calendar', maxStaleMs: 2_000 });
    n.say('Agent B @ mini-3', 'asks the calendar, content with an answer up to 2 s stale');
    n.detail(`answered by ${local.servedBy}'s own replica (at most ${local.staleMs} ms behind the leader): ${quote(local.facts[0]?.text ?? '(nothing)')}`);
    check(local.servedBy === 'mini-3' && local.facts[0]?.text === ruleText, "mini-3's replica answers its own agent", local);

    // One write every 50 ms, through mini-1's restart.
    const written: string[] = [];
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const r = await c.remember({ text: `Calendar note ${i}, written while mini-1 restarts` }, { domain: 'calendar' });
        written.push(r.factId);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    const { exitMs } = await minis.restart('mini-1');
    writing = false;
    await writer;
    const leader = await minis.leaderOf('calendar');
    n.say('mini-1', `is stopped with SIGTERM while Agent C keeps writing to the calendar, and comes back`);
    n.detail(`mini-1 handed calendar to ${leader} and exited in ${exitMs} ms; Agent C made ${written.length} writes meanwhile, none failed`);
    check(leader === 'mini-2', 'the calendar moves to its first standby, mini-2, before mini-1 exits', { leader });
    const found = await Promise.all(written.map((id) => a.get(id).then((f) => (f ? id : undefined), () => undefined)));
    const lost = written.filter((_, i) => found[i] === undefined);
    check(written.length > 0 && lost.length === 0, 'every write made during the restart is there', { written: written.length, lost });
    n.ok(`no write lost, no error seen; \`shardmind apply\` would move calendar back to mini-1`);
  } finally {
    await Promise.allSettled(agents.map((x) => x.close()));
  }
}
