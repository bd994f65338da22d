/**
 * The built-in classifier: tokenization, calibration, online learning, and accuracy on the labelled set (trained
 * only from the shipped config's descriptions and seeds; the labelled set is never trained on).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import config from '../../cluster.config.ts';
import { NaiveBayesClassifier, fanOut, words } from '../../router/index.ts';
import { LABELLED } from '../fixtures/labelled.ts';

const { fanoutMargin, fanoutFloor } = { fanoutMargin: 0.25, fanoutFloor: 0.15, ...config.router };

test('tokenize - times, weekdays and plurals fold so one seed teaches a family', () => {
  assert.equal(words('Book Alice on Tuesday at 3pm'), words('book alice on thursday at 10:30'));
  assert.equal(words('meetings'), words('meeting'));
  assert.equal(words('scheduled'), words('schedule'));
  assert.ok(words('write to bob@example.com').includes('#address'));
  assert.ok(words('it is in Documents/Finance/Reports').includes('#path'));
  assert.equal(words('auto-reply'), words('auto reply'));
});

test('tokenize - every fold, each only where the text has what it folds', () => {
  assert.equal(words('call at noon or 9:15 or 7 pm, see https://x.io/a, mail ann@b.co'), ['call', '#time', '#time', '#time', 'see', '#url', 'email', '#address']);
  assert.equal(words('due 2026-03-04, the 3rd, for 30 minutes'), ['due', '#date', '#date', '#duration']);
  // "notes" stems to "not" after the stop list is applied, so it stays.
  assert.equal(words('open ~/notes/q3.md and budget.xlsx'), ['open', '#path', 'not', '#filename', 'md', '#filename', 'xlsx']);
  // "may" and "not" are stop words.
  assert.equal(words('Sept and January, not May; Wednesdays and thurs'), ['#month', '#month', '#weekday', '#weekday']);
  assert.equal(words("Dana's 'quoted' reply and 42"), ['dana', 'quot', 'reply', '#number']);
  assert.equal(words('a plain sentence without any of them'), ['plain', 'sentenc', 'without']);
});

test('classify - a distribution over every domain, best first, summing to 1', () => {
  const c = new NaiveBayesClassifier(config.domains);
  const d = c.classify('move the standup to 11am');
  assert.equal(d.length, 3);
  assert.equal(d[0]!.domain, 'calendar');
  assert.ok(Math.abs(d.reduce((s, x) => s + x.p, 0) - 1) < 1e-9);
  for (let i = 1; i < d.length; i++) assert.ok(d[i - 1]!.p >= d[i]!.p);
});

test('classify - text with no known word is the uniform prior, and recall asks every domain', () => {
  const c = new NaiveBayesClassifier(config.domains);
  const d = c.classify('zzzz qqqq');
  for (const x of d) assert.ok(Math.abs(x.p - 1 / 3) < 1e-9);
  assert.equal(fanOut(d, fanoutMargin, fanoutFloor).length, 3);
});

test('learn - labelled examples move a new word to its domain', () => {
  const c = new NaiveBayesClassifier(config.domains);
  const before = c.classify('quokka').find((x) => x.domain === 'files')!.p;
  for (let i = 0; i < 3; i++) c.learn('the quokka renders are big', 'files');
  const after = c.classify('quokka');
  assert.equal(after[0]!.domain, 'files');
  assert.ok(after[0]!.p > before);
  c.learn('ignored', 'no_such_domain');
});

test('fanOut - margin and floor select the domains in play; the top one always', () => {
  const d = [
    { domain: 'email', p: 0.5 },
    { domain: 'files', p: 0.3 },
    { domain: 'calendar', p: 0.2 },
  ];
  assert.equal(fanOut(d, 0.25, 0.15), ['email', 'files']);
  assert.equal(fanOut(d, 0.35, 0.15), ['email', 'files', 'calendar']);
  assert.equal(fanOut(d, 0.35, 0.25), ['email', 'files']);
  assert.equal(fanOut([{ domain: 'email', p: 0.1 }], 0.25, 0.5), ['email']);
});

test('labelled set - no item is a near copy of a seed (no training on the test)', () => {
  const seeds = config.domains.flatMap((d) => d.seeds.map((s) => new Set(words(s))));
  for (const item of LABELLED) {
    const w = new Set(words(item.text));
    for (const s of seeds) {
      const inter = [...w].filter((x) => s.has(x)).length;
      const jaccard = inter / (w.size + s.size - inter);
      assert.ok(jaccard <= 0.5, `"${item.text}" is too close to a seed`);
    }
  }
  assert.ok(LABELLED.length >= 150);
});

test('labelled set - top-1 ≥ 90% and every ambiguous case reaches its right domain through fan-out', () => {
  const c = new NaiveBayesClassifier(config.domains);
  let top1 = 0;
  let ambiguous = 0;
  let primaryInFan = 0;
  let allInFan = 0;
  let clearFan = 0;
  const misses: string[] = [];
  for (const item of LABELLED) {
    const d = c.classify(item.text);
    const acceptable = [item.domain, ...(item.also ?? [])];
    const asked = fanOut(d, fanoutMargin, fanoutFloor);
    if (acceptable.includes(d[0]!.domain as LabelledDomain)) top1++;
    else misses.push(`${item.domain} ← ${d[0]!.domain}: ${item.text}`);
    if (item.also) {
      ambiguous++;
      if (asked.includes(item.domain)) primaryInFan++;
      else misses.push(`fan-out ${asked.join(',')} misses ${item.domain}: ${item.text}`);
      if (acceptable.every((a) => asked.includes(a))) allInFan++;
    } else clearFan += asked.length;
  }
  const clear = LABELLED.length - ambiguous;
  console.log(
    `  labelled set: ${LABELLED.length} items (${ambiguous} ambiguous); top-1 ${top1}/${LABELLED.length} = ` +
      `${((100 * top1) / LABELLED.length).toFixed(1)}%; ambiguous: right domain in fan-out ${primaryInFan}/${ambiguous}, ` +
      `every plausible domain in fan-out ${allInFan}/${ambiguous}; mean domains asked for a clear item ` +
      `${(clearFan / clear).toFixed(2)}`,
  );
  for (const m of misses) console.log(`    ${m}`);
  assert.ok(top1 / LABELLED.length >= 0.9, `top-1 ${top1}/${LABELLED.length}`);
  assert.is(primaryInFan, ambiguous);
});

type LabelledDomain = (typeof LABELLED)[number]['domain'];

test.run();
