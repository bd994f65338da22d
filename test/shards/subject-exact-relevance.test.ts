/**
 * A subject-filtered recall scores a candidate from its words' 16-bit hashes without reading its text when each hash
 * it shares with a query word is known to name one word (`FactWords.wordsOfHash`, `recall.ts`): the answers, scores
 * included, must be those of reading every candidate (a recall `asOf` now, which reads the records). Checked with
 * words whose hashes collide — both filed (the text must be read), one filed and the other only asked for (the
 * entry says which it is), one asked for whose hash no fact has — with repeats and a text long enough to saturate its
 * length, on a store loaded in this process and on the same store reopened (entries filled from the records).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openShardStore, type LogEntry, type RecallQuery, type ShardStore } from '../../shards/index.ts';
import { wordHash } from '../../shards/fact-words.ts';
import { WORD } from '../../shards/records.ts';
import { hashTerm, TERM_HASH } from '../../shards/term-table.ts';
import { tokenize } from '../../shards/text.ts';
import { prng, T0, tempDir } from './helpers.ts';

const source = { agent: 'a', node: 'mini-1' };

/** Pairs of words (as the tokenizer keeps them) whose 16-bit word hashes are equal. */
function collidingPairs(count: number): [string, string][] {
  const byHash = new Map<number, string>();
  const pairs: [string, string][] = [];
  for (let i = 0; pairs.length < count; i++) {
    const word = `kw${i.toString(36)}v`;
    if (tokenize(word).join() !== word) continue;
    const h = wordHash(hashTerm(WORD, word, '', TERM_HASH)[0]!);
    const other = byHash.get(h);
    if (other === undefined) byHash.set(h, word);
    else {
      pairs.push([other, word]);
      byHash.delete(h);
    }
  }
  return pairs;
}

const [[both1, both2], [filed, asked], [long, unfiled]] = collidingPairs(3) as [[string, string], [string, string], [string, string]];
const FILLER = Array.from({ length: 8 }, (_, i) => `filler${i}x`);

function log(): { seq: number; entry: LogEntry }[] {
  const rnd = prng(5);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const texts: string[] = [];
  for (let i = 0; i < 160; i++) {
    const words = Array.from({ length: 2 + Math.floor(rnd() * 6) }, () => pick(FILLER));
    // Each colliding word in some texts, sometimes repeated; `asked` and `unfiled` in none; `both2` only in facts
    // below the open segment, so a reopened store learns it shares `both1`'s hash only from their records.
    for (const w of i < 100 ? [both1, both2, filed, long] : [both1, filed, long]) {
      if (rnd() < 0.3) words.splice(Math.floor(rnd() * words.length), 0, ...Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => w));
    }
    texts.push(words.join(' '));
  }
  // A text of 300 words: its length saturates in its entry, so it is read.
  texts.push([long, ...Array.from({ length: 299 }, () => pick(FILLER))].join(' '));
  return texts.map((text, i) => {
    // Spread over three index segments: reopened, the older facts' words are filled from their records.
    const seq = 1 + i * 1100;
    const subject = `person-${i % 3}`;
    return { seq, entry: { v: 1, op: 'assert', opId: `op-${seq}`, recordedAt: T0 + seq * 1000, source, fact: { text, subject, predicate: `rel${i % 5}`, confidence: 0.3 + rnd() * 0.7 } } };
  });
}

function queries(now: number): RecallQuery[] {
  const out: RecallQuery[] = [];
  const asks = [[both1], [both2], [filed], [asked], [long], [unfiled], [filed, FILLER[1]!], [asked, both1], [long, FILLER[2]!, FILLER[3]!], [FILLER[4]!], [asked, unfiled]];
  for (let s = 0; s < 3; s++) {
    for (const words of asks) for (const limit of [3, 10, 40]) out.push({ subject: `person-${s}`, query: words.join(' '), now, limit });
  }
  return out;
}

const answer = (store: ShardStore, q: RecallQuery): [string, number][] => store.recall(q).facts.map((f) => [f.id, f.score]);

function sameAsReading(store: ShardStore, qs: readonly RecallQuery[], label: string): void {
  let found = 0;
  for (const q of qs) {
    const got = answer(store, q);
    assert.equal(got, answer(store, { ...q, asOf: q.now }), `${label}: ${JSON.stringify(q)}`);
    found += got.length;
  }
  assert.ok(found > qs.length, `${label}: the queries find facts (${found})`);
}

test('a subject-filtered candidate scored from its word hashes gets the score reading it gives, collisions and all', async () => {
  const dir = tempDir();
  let store: ShardStore | undefined;
  try {
    const entries = log();
    const now = T0 + (entries.at(-1)!.seq + 10) * 1000;
    const qs = queries(now);
    store = openShardStore({ path: dir.path, domain: 't', durability: 'none' });
    await store.applyBatch(entries);
    sameAsReading(store, qs, 'loaded');
    await store.close();
    store = openShardStore({ path: dir.path, domain: 't', durability: 'none' });
    sameAsReading(store, qs, 'reopened');
  } finally {
    await store?.close();
    dir.remove();
  }
});

test.run();
