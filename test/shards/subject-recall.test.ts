/**
 * A subject-filtered recall scores its candidates from the facts' words kept in memory (`shards/fact-words.ts`) and
 * reads only those that may enter the top k: the answers must be those of reading every candidate. A recall `asOf`
 * now takes the reading path (it needs times only the records hold) and, on facts that were never superseded, means
 * the same thing — so it is the reference, for a store that indexed its facts in this process and for one reopened
 * (older facts' words filled from their records).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openShardStore, SEGMENT_SEQS, type LogEntry, type RecallQuery, type ShardStore } from '../../shards/index.ts';
import { prng, T0, tempDir } from './helpers.ts';

const WORDS = Array.from({ length: 30 }, (_, i) => `term${i}`);
const SUBJECTS = 6;
const FACTS = 1500;
/** The facts span two merged segments and an open one. */
const STEP = Math.ceil((2.5 * SEGMENT_SEQS) / FACTS);
const source = { agent: 'a', node: 'mini-1' };

function log(): { seq: number; entry: LogEntry }[] {
  const rnd = prng(23);
  const word = (): string => WORDS[Math.floor(rnd() ** 2 * WORDS.length)]!;
  const out: { seq: number; entry: LogEntry }[] = [];
  for (let i = 0; i < FACTS; i++) {
    const seq = 1 + i * STEP;
    const subject = `person-${Math.floor(rnd() * SUBJECTS)}`;
    // Some texts repeat a word (term frequency above 1), some are long.
    const words = Array.from({ length: 2 + Math.floor(rnd() * (rnd() < 0.1 ? 40 : 8)) }, word);
    const fact = { text: `${subject} ${words.join(' ')}`, subject, predicate: `rel${i % 4}`, object: word(), confidence: 0.4 + rnd() * 0.6 };
    out.push({ seq, entry: { v: 1, op: 'assert', opId: `op-${seq}`, recordedAt: T0 + seq * 1000, source, fact } });
  }
  return out;
}

function queries(now: number): RecallQuery[] {
  const out: RecallQuery[] = [];
  for (let s = 0; s < SUBJECTS; s++) {
    const subject = `person-${s}`;
    out.push({ subject, now });
    out.push({ subject, query: WORDS[s]!, now });
    out.push({ subject, query: `${WORDS[s + 5]} ${WORDS[29 - s]}`, now, limit: 5 });
    out.push({ subject, query: `${WORDS[0]} ${WORDS[1]} ${WORDS[2]} ${WORDS[20 + s]}`, now, limit: 12 });
    out.push({ subject, query: `${WORDS[s]} ${WORDS[s + 10]}`, now, limit: 3, hops: 1 });
  }
  return out;
}

const answer = (store: ShardStore, q: RecallQuery): [string, number][] => store.recall(q).facts.map((f) => [f.id, f.score]);

function sameAsReading(store: ShardStore, qs: readonly RecallQuery[], label: string): void {
  for (const q of qs) {
    const got = answer(store, q);
    assert.equal(got, answer(store, { ...q, asOf: q.now }), `${label}: ${JSON.stringify(q)}`);
    if (q.limit !== 3) assert.ok(got.length > 0, `${label}: finds facts for ${JSON.stringify(q)}`);
  }
}

test('subject-filtered recall from the words in memory answers as reading every candidate does', async () => {
  const dir = tempDir();
  let store: ShardStore | undefined;
  try {
    const entries = log();
    const last = entries.at(-1)!.seq;
    const forgets: { seq: number; entry: LogEntry }[] = [3, 200, 700, 1400].map((i, k) => ({
      seq: last + 1 + k,
      entry: { v: 1, op: 'forget', opId: `forget-${k}`, recordedAt: T0 + (last + 1 + k) * 1000, source, factId: `t:${entries[i]!.seq.toString(36).padStart(10, '0')}:0` },
    }));
    const now = T0 + (last + 10) * 1000;
    const qs = queries(now);
    store = openShardStore({ path: dir.path, domain: 't', durability: 'none' });
    await store.applyBatch(entries.slice(0, 700));
    sameAsReading(store, qs, 'loading');
    await store.applyBatch(entries.slice(700));
    await store.applyBatch(forgets);
    sameAsReading(store, qs, 'loaded');
    await store.close();
    store = openShardStore({ path: dir.path, domain: 't', durability: 'none' });
    sameAsReading(store, qs, 'reopened');
  } finally {
    await store?.close();
    dir.remove();
  }
});

test('a query word whose 16-bit hash collides with another word of the fact does not lower its bound (the best answer stays)', async () => {
  // "q3wc8k" and "zebrafish" share their word hash: the fact's first word with that hash occurs once, the query's
  // word three times, so a bound from the first match fell below the fact's relevance and the fact was passed over.
  const dir = tempDir();
  const store = openShardStore({ path: dir.path, domain: 'd', durability: 'none' });
  try {
    const assertAt = (seq: number, text: string, subject?: string): { seq: number; entry: LogEntry } => ({
      seq,
      entry: { v: 1, op: 'assert', opId: `op-${seq}`, recordedAt: T0 + seq, source, fact: { text, ...(subject !== undefined && { subject }) } },
    });
    await store.applyBatch([
      assertAt(1, 'q3wc8k zebrafish zebrafish zebrafish', 'sam'),
      assertAt(2, 'zebrafish other', 'sam'),
      ...Array.from({ length: 20 }, (_, i) => assertAt(3 + i, `filler text number ${i}`)),
    ]);
    const now = T0 + 86_400_000;
    const best = store.recall({ subject: 'sam', query: 'zebrafish', now, limit: 1 }).facts.map((f) => f.text);
    assert.equal(best, ['q3wc8k zebrafish zebrafish zebrafish']);
    assert.equal(answer(store, { subject: 'sam', query: 'zebrafish', now, limit: 1 }), answer(store, { subject: 'sam', query: 'zebrafish', now, limit: 1, asOf: now }));
  } finally {
    await store.close();
    dir.remove();
  }
});

test.run();
