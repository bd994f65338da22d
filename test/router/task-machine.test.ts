/**
 * The task machine, pure: evidence accumulation and the re-route margin, explicit re-route, and that a persisted
 * snapshot (through JSON, as it sits in KV) continues exactly where it stopped.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import config from '../../cluster.config.ts';
import { NaiveBayesClassifier, newTask, stepTask, type TaskEvent } from '../../router/index.ts';

const classifier = new NaiveBayesClassifier(config.domains);
const input = { id: 't-1', agent: 'agent-a', rerouteMargin: 0.2 };
let clock = 1_000;
const at = () => (clock += 1000);
const observe = (text: string): TaskEvent => ({
  type: 'OBSERVE',
  at: at(),
  text,
  distribution: classifier.classify(text),
  weight: classifier.informativeness(text),
});
const begin = (text: string): TaskEvent => ({ type: 'CLASSIFIED', at: at(), text, distribution: classifier.classify(text) });

test('begin - the opening text picks the domain; a named domain wins over the words', () => {
  const t = newTask(input, [begin('reply to the landlord about the leaking sink and attach the photos')]);
  assert.is(t.state, 'active');
  assert.is(t.context.domain, 'email');
  assert.equal(t.context.visited, ['email']);
  const named = newTask(input, [{ ...begin('reply to the landlord'), domain: 'files' } as TaskEvent]);
  assert.is(named.context.domain, 'files');
});

test('observe - one stray calendar word, or one calendar sentence, does not move an email task', () => {
  for (const stray of ['meeting', 'she mentioned a meeting', 'Can we talk on Tuesday at 3pm?']) {
    const t = newTask(input, [begin('draft a reply to Dana about the contract renewal email'), observe(stray)]);
    assert.is(t.state, 'active', stray);
    assert.is(t.context.domain, 'email');
    assert.is(t.context.history.length, 2);
  }
});

test('observe - sustained evidence for another domain re-routes past the margin', () => {
  let t = newTask(input, [begin('answer the email from Dana about the project')]);
  const steps = [
    'Dana would rather meet in person next week to go over it',
    'find a free slot next Tuesday afternoon for a 30 minute call and send her an invitation',
  ];
  for (const s of steps) {
    t = stepTask(JSON.parse(JSON.stringify(t.persisted)), [observe(s)]);
    if (t.state === 'rerouting') break;
  }
  assert.is(t.state, 'rerouting');
  assert.equal(t.context.pending, { from: 'email', to: 'calendar', why: 'evidence' });
  t = stepTask(t.persisted, [{ type: 'SETTLED', at: at() }]);
  assert.is(t.state, 'active');
  assert.is(t.context.domain, 'calendar');
  assert.equal(t.context.visited, ['calendar', 'email']);
  const reroute = t.context.history.at(-1)!;
  assert.is(reroute.kind, 'reroute');
  assert.is(reroute.from, 'email');
  assert.is(reroute.to, 'calendar');
});

test('observe - a bigger margin needs more evidence before moving', () => {
  const strict = { ...input, rerouteMargin: 0.9 };
  let t = newTask(strict, [begin('answer the email from Dana about the project')]);
  for (const s of ['book a meeting on Tuesday at 3pm', 'find a free slot for the call', 'send the calendar invite']) {
    t = stepTask(t.persisted, [observe(s)]);
  }
  assert.is(t.state, 'active');
  assert.is(t.context.domain, 'email');
});

test('reroute - an explicit move goes to the named domain and is not undone by the next old-domain word', () => {
  let t = newTask(input, [begin('forward the invoice to accounting by email')]);
  t = stepTask(t.persisted, [{ type: 'REROUTE', at: at(), to: 'files' }]);
  assert.is(t.state, 'rerouting');
  assert.is(t.context.pending?.why, 'explicit');
  t = stepTask(t.persisted, [{ type: 'SETTLED', at: at() }, observe('reply to the message')]);
  assert.is(t.state, 'active');
  assert.is(t.context.domain, 'files');
  const same = stepTask(t.persisted, [{ type: 'REROUTE', at: at(), to: 'files' }]);
  assert.is(same.state, 'active');
});

test('snapshot - restored from JSON it keeps domain, visited domains, evidence and history; END is final', () => {
  let t = newTask(input, [begin('share the budget spreadsheet with the finance team')]);
  t = stepTask(t.persisted, [
    { type: 'REMEMBERED', at: at(), domain: 'files', factId: 'files:1', text: 'budget is in Finance/2026' },
    { type: 'REROUTE', at: at(), to: 'email' },
    { type: 'SETTLED', at: at() },
  ]);
  const restored = stepTask(JSON.parse(JSON.stringify(t.persisted)), []);
  assert.equal(restored.context, t.context);
  assert.equal(restored.context.visited, ['email', 'files']);
  const ended = stepTask(restored.persisted, [{ type: 'END', at: at() }, observe('book a meeting')]);
  assert.is(ended.state, 'ended');
  assert.equal(ended.context.history.map((h) => h.kind), ['begin', 'remember', 'reroute', 'end']);
});

test('snapshot - stays far under the 1 MiB NATS message limit however long and many the texts', () => {
  const long = 'reply to the email about the contract '.repeat(420); // ~16 KiB, the edge's text limit
  let t = newTask(input, [{ type: 'CLASSIFIED', at: at(), text: long, distribution: classifier.classify('email') }]);
  for (let i = 0; i < 250; i++) t = stepTask(t.persisted, [{ type: 'OBSERVE', at: at(), text: long, distribution: classifier.classify('email'), weight: 1 }]);
  const bytes = JSON.stringify(t.persisted).length;
  assert.ok(bytes < 256 * 1024, `${bytes} bytes`);
  assert.is(t.context.history[0]!.kind, 'begin');
  assert.is(t.context.history.length, 200);
});

test.run();
