/**
 * `relevanceOfText` (shards/recall.ts): a subject-filtered candidate's BM25 sum over the query words, from its text
 * scanned as the index scans it, its words matched by identity. It must give the bits a map of its tokens gave — each
 * query word the text holds, in the order its first occurrence comes, with its frequency, over the text's length in
 * tokens — or subject-filtered scores change. Checked against that sum on random texts with repeats, mixed case,
 * plurals, stopwords, punctuation, digits, over-long and non-ASCII words, absent and repeated query words, and empty
 * texts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import '../../shards/index.ts';
import { queryTerms, relevanceOfText } from '../../shards/recall.ts';
import { termFrequencies, tokenize } from '../../shards/text.ts';
import { prng } from './helpers.ts';

const bm25With = (weight: number, tf: number, len: number): number => weight * ((tf * 2.2) / (tf + 1.2 * (0.25 + (0.75 * len) / 9.3)));

function byMap(text: string, idf: ReadonlyMap<string, number>): number {
  const tokens = tokenize(text);
  let sum = 0;
  for (const [w, tf] of termFrequencies(tokens)) if (idf.has(w)) sum += bm25With(idf.get(w) ?? 0, tf, tokens.length);
  return sum;
}

// Spellings that tokenize to the same word (case, plurals), stopwords, single characters, digits, a word past the
// token length cap, and words outside ASCII (their text takes the Unicode tokenizer).
const FORMS = [
  'report', 'Reports', 'REPORT', 'body', 'bodies', 'class', 'status', 'Bob', "bob's", 'pdf', 'PDFs', 'the', 'and', 'a', 'x', '7', '42',
  'q3', 'attachment', 'attachments', 'x'.repeat(60), 'x'.repeat(61) + 's', 'zurich', 'zürich', 'naïve', 'café', 'cafés',
];
const SEPARATORS = [' ', ' ', ', ', '. ', '-', ' (', ') ', '\n', '/'];

test('the sum is the one over the term frequencies of its tokens, bit for bit', () => {
  const rnd = prng(11);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  let matched = 0;
  let unicode = 0;
  for (let round = 0; round < 5000; round++) {
    // Unicode-free texts for most rounds: one non-ASCII character sends the whole text down the other tokenizer.
    const forms = round % 4 === 0 ? FORMS : FORMS.filter((f) => /^[\x00-\x7f]*$/.test(f));
    const parts: string[] = [];
    for (let i = Math.floor(rnd() * 30); i > 0; i--) parts.push(forms[Math.floor(rnd() ** 2 * forms.length)]!, pick(SEPARATORS));
    const text = parts.join('');
    if (!/^[\x00-\x7f]*$/.test(text)) unicode++;
    // Query words as recall takes them (tokenized, distinct); weights with many digits, so the order of addition
    // shows in the bits.
    const words = [...new Set(tokenize(Array.from({ length: 1 + Math.floor(rnd() * 5) }, () => pick(FORMS)).join(' ')))];
    const idf = new Map(words.map((w) => [w, rnd() * 9 + 1e-7 * rnd()]));
    const expected = byMap(text, idf);
    const got = relevanceOfText(text, queryTerms(words, idf), bm25With);
    assert.ok(Object.is(got, expected), `round ${round}: ${got} !== ${expected} for ${JSON.stringify(text)} and ${words.join(' ')}`);
    if (expected > 0) matched++;
  }
  assert.ok(matched > 2000, `most texts hold a query word (${matched})`);
  assert.ok(unicode > 500, `some texts are not ASCII (${unicode})`);
});

test('more than 32 query words is a programming error', () => {
  const words = Array.from({ length: 33 }, (_, i) => `w${i}`);
  assert.throws(() => queryTerms(words, new Map(words.map((w) => [w, 1]))), /too many query words/);
});

test.run();
