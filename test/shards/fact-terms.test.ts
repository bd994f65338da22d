/**
 * `FactTerms` files a fact under the terms `tokenize` defines, hashed as `hashTerm` hashes their strings: the load
 * path scans ASCII text in place without building token strings, and readers hash query words from strings, so
 * the two must agree on every token rule (case, stopwords, single characters, plural stems, the length cap) and
 * on non-ASCII text, which takes the string path.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FactTerms, hashTerm, tokenize, type Fact } from '../../shards/index.ts';
import { prng } from './helpers.ts';

type Fields = Pick<Fact, 'text' | 'subject' | 'predicate' | 'object'>;

/** What the terms must be: distinct tokens in first-occurrence order with their counts, then the structural terms. */
function expected(f: Fields): { names: string[]; idents: number[][]; tfs: number[]; length: number } {
  const tokens = tokenize(f.text);
  const counts = new Map<string, number>();
  for (const t of tokens) counts.set(t, (counts.get(t) ?? 0) + 1);
  const names: string[] = [];
  const idents: number[][] = [];
  const tfs: number[] = [];
  for (const [t, n] of counts) {
    names.push('w:' + t);
    idents.push([...hashTerm(0, t, '', new Int32Array(3))]);
    tfs.push(n);
  }
  const structural = (name: string, kind: number, a: string, b: string): void => {
    names.push(name);
    idents.push([...hashTerm(kind as 0, a, b, new Int32Array(3))]);
    tfs.push(0);
  };
  if (f.subject !== undefined) {
    structural('s:' + f.subject, 1, f.subject, '');
    if (f.predicate !== undefined) structural(`p:${f.subject}\x1f${f.predicate}`, 2, f.subject, f.predicate);
  }
  if (f.object !== undefined && typeof f.object !== 'string') structural('o:' + f.object.entity, 3, f.object.entity, '');
  return { names, idents, tfs, length: tokens.length };
}

function actual(terms: FactTerms, f: Fields): ReturnType<typeof expected> {
  const length = terms.scan(f);
  const names: string[] = [];
  const idents: number[][] = [];
  const tfs: number[] = [];
  for (let i = 0; i < terms.count; i++) {
    names.push(terms.name(i));
    idents.push([...terms.ident.subarray(i * 3, i * 3 + 3)]);
    tfs.push(terms.tf[i]!);
  }
  return { names, idents, tfs, length };
}

const PIECES = [
  'The', 'user', 'PREFERS', 'pdf', 'attachments', 'Stories', 'ties', 'pies', 'boss', 'bus', 'this', 'analysis', 'glass',
  'a', 'I', '7', '42', 'x', 'to', 'THEIR', 'which', 'Into', 'over', 'links', 'series', 'Queries',
  'b'.repeat(47) + 'ies', 'c'.repeat(50) + 's', 'd'.repeat(60), 'e'.repeat(45) + 'ies', 'A'.repeat(49),
  'über', 'café', 'naïve', '\u212a', '😀', 'mañana', 'x1', '3d', 'it\'s', 'e-mail', 'co_op',
];
const SEPARATORS = [' ', '  ', ', ', '. ', '!', '-', '\n', '\t', '/', '(', ')', '"'];

test('the in-place scan gives the terms tokenize and hashTerm define, on ASCII and non-ASCII text', () => {
  const random = prng(5);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const terms = new FactTerms();
  let nonAscii = 0;
  for (let n = 0; n < 3000; n++) {
    const words = Array.from({ length: 1 + Math.floor(random() * 40) }, () => pick(PIECES));
    // Every other text stays ASCII: most of them exercise the in-place path.
    const text = (n % 2 === 0 ? words.filter((w) => /^[\x00-\x7f]*$/.test(w)) : words).map((w) => w + pick(SEPARATORS)).join('') || 'empty';
    if (/[^\x00-\x7f]/.test(text)) nonAscii++;
    const f: Fields =
      n % 3 === 0
        ? { text }
        : n % 3 === 1
          ? { text, subject: 'person-' + n, predicate: 'rel_' + (n % 5), object: 'x' }
          : { text, subject: 'Ünïcode-' + n, predicate: 'p', object: { entity: 'bob-' + n } };
    assert.equal(actual(terms, f), expected(f), text);
  }
  assert.ok(nonAscii > 500, `non-ASCII texts exercised (${nonAscii})`);
});

test('many distinct words in one text (the dedupe table grows)', () => {
  const words = Array.from({ length: 3000 }, (_, i) => 'word' + i.toString(36));
  const text = [...words, ...words.slice(0, 100)].join(' ');
  const terms = new FactTerms();
  assert.equal(actual(terms, { text }), expected({ text }));
  // And the instance is reusable after a big fact.
  assert.equal(actual(terms, { text: 'small Texts again' }), expected({ text: 'small Texts again' }));
});

test.run();
