/**
 * The decoded merged postings recall keeps in memory (`shards/merged-postings.ts`) never change an answer: a store
 * that loaded its segments in this process (every word's postings followed through each merge), and one reopened
 * (terms read from the blocks on first use and kept), answer every query as a store just opened does — before and
 * after forgets that rewrite merged blocks, one of them while a segment's merge is still under way.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MERGE_SPAN, openShardStore, SEGMENT_SEQS, type LogEntry, type RecallQuery, type ShardStore } from '../../shards/index.ts';
import { prng, T0, tempDir } from './helpers.ts';

const WORDS = Array.from({ length: 40 }, (_, i) => `word${i}`);
const SUBJECTS = 12;
const FACTS = 2400;
/** Sequences between facts: the facts span four merged segments and an open one. */
const STEP = Math.ceil((4.5 * SEGMENT_SEQS) / FACTS);
const source = { agent: 'a', node: 'mini-1' };

/** Facts whose words are skewed (word0 in most, word39 in few), so common words pass recall's per-term cap. */
function facts(): { seq: number; entry: LogEntry }[] {
  const rnd = prng(11);
  const word = (): string => WORDS[Math.floor(rnd() ** 3 * WORDS.length)]!;
  const out: { seq: number; entry: LogEntry }[] = [];
  for (let i = 0; i < FACTS; i++) {
    const seq = 1 + i * STEP;
    const text = Array.from({ length: 3 + Math.floor(rnd() * 5) }, word).join(' ');
    const subject = `person-${Math.floor(rnd() * SUBJECTS)}`;
    const fact = rnd() < 0.3 ? { text } : { text: `${subject} ${text}`, subject, predicate: `rel${i % 3}`, object: word(), confidence: 0.5 + rnd() / 2 };
    out.push({ seq, entry: { v: 1, op: 'assert', opId: `op-${seq}`, recordedAt: T0 + seq, source, fact } });
  }
  return out;
}

const factId = (seq: number): string => `t:${seq.toString(36).padStart(10, '0')}:0`;
const forget = (seq: number, ofSeq: number): { seq: number; entry: LogEntry } => ({
  seq,
  entry: { v: 1, op: 'forget', opId: `forget-${seq}`, recordedAt: T0 + seq, source, factId: factId(ofSeq) },
});

function queries(now: number): RecallQuery[] {
  const out: RecallQuery[] = [];
  for (let i = 0; i < WORDS.length; i += 3) out.push({ query: `${WORDS[i]} ${WORDS[WORDS.length - 1 - i]}`, now, limit: 10 });
  for (let i = 0; i < WORDS.length; i += 7) out.push({ query: WORDS[i]!, now, limit: 30 });
  for (let s = 0; s < SUBJECTS; s += 4) out.push({ query: `${WORDS[s]} ${WORDS[20 + s]}`, subject: `person-${s}`, now, limit: 10 });
  for (let s = 0; s < SUBJECTS; s += 5) out.push({ query: WORDS[s + 1]!, subject: `person-${s}`, predicate: `rel${s % 3}`, now, limit: 10 });
  out.push({ query: 'word1 word2 word3', now, hops: 1, limit: 5 });
  return out;
}

const answer = (store: ShardStore, q: RecallQuery): string => JSON.stringify(store.recall(q).facts.map((f) => [f.id, f.score]));

/** Each query's answer from a store opened just for it (nothing kept from an earlier read). */
async function coldAnswers(path: string, qs: readonly RecallQuery[]): Promise<string[]> {
  const out: string[] = [];
  for (const q of qs) {
    const store = openShardStore({ path, domain: 't', durability: 'none' });
    try {
      out.push(answer(store, q));
    } finally {
      await store.close();
    }
  }
  return out;
}

test('answers with the decoded merged postings are those of a store just opened, through forgets', async () => {
  const loaded = tempDir();
  const reopened = tempDir();
  const stores: ShardStore[] = [];
  try {
    const log = facts();
    const last = log.at(-1)!.seq;
    const segments = Math.floor(last / SEGMENT_SEQS);
    // The last segment boundary's merge is still under way after the load: a forget there edits a block the sealed
    // segment's built blocks still hold; the others edit blocks merged long ago.
    const boundary = segments * SEGMENT_SEQS;
    const inWindow = log.findIndex((x) => x.seq >= boundary);
    assert.ok(inWindow > 0 && log[inWindow]!.seq < boundary + MERGE_SPAN / 2, 'a fact early in the last segment');
    const sealedFact = log[inWindow - 3]!.seq;
    const head = log.slice(0, inWindow + 1);
    const tail = log.slice(inWindow + 1);
    const windowForget = forget(head.at(-1)!.seq + 1, sealedFact);

    const live = openShardStore({ path: loaded.path, domain: 't', durability: 'none' });
    stores.push(live);
    const qs = queries(T0 + last);
    // Read between loads too: what recall kept must follow the merges that come after it.
    const firstSegment = log.findIndex((x) => x.seq >= SEGMENT_SEQS + MERGE_SPAN);
    await live.applyBatch(head.slice(0, firstSegment));
    for (const q of qs) live.recall(q);
    await live.applyBatch(head.slice(firstSegment));
    for (const q of qs) live.recall(q);
    await live.applyBatch([windowForget]);
    for (const q of qs) live.recall(q);
    await live.applyBatch(tail);
    const before = qs.map((q) => answer(live, q));
    assert.ok(before.filter((a) => a !== '[]').length >= qs.length - 1, 'the queries find facts');
    // Forget facts that were recalled, from segments merged long before.
    const recalled = new Set(before.flatMap((a) => (JSON.parse(a) as [string, number][]).map(([id]) => parseInt(id.split(':')[1]!, 36))));
    const old = [...recalled].filter((s) => s < boundary - SEGMENT_SEQS).sort((a, b) => a - b);
    assert.ok(old.length >= 4, 'recalled facts in old segments');
    const laterForgets = [old[0]!, old[Math.floor(old.length / 3)]!, old[Math.floor((2 * old.length) / 3)]!, old.at(-1)!].map((s, i) => forget(last + 1 + i, s));
    await live.applyBatch(laterForgets);
    const afterLive = qs.map((q) => answer(live, q));

    // The same log into a second store, reopened and warmed (terms read on first use) before the later forgets.
    let other = openShardStore({ path: reopened.path, domain: 't', durability: 'none' });
    await other.applyBatch(head);
    await other.applyBatch([windowForget]);
    await other.applyBatch(tail);
    await other.close();
    other = openShardStore({ path: reopened.path, domain: 't', durability: 'none' });
    stores.push(other);
    assert.equal(qs.map((q) => answer(other, q)), before);
    assert.equal(qs.map((q) => answer(other, q)), before, 'read again from what it kept');
    await other.applyBatch(laterForgets);
    const afterOther = qs.map((q) => answer(other, q));
    await other.close();
    stores.pop();

    const cold = await coldAnswers(reopened.path, qs);
    assert.equal(afterLive, cold);
    assert.equal(afterOther, cold);
    assert.not.equal(afterLive, before, 'the forgets removed facts that were recalled');
  } finally {
    for (const s of stores) await s.close();
    loaded.remove();
    reopened.remove();
  }
});

test.run();
