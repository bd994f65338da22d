/**
 * `ShardStore.warmUp`: a reopened store does ahead of time what its first recalls would do on first use (each word's
 * and subject's merged postings decoded into memory, the words of facts older than the process filed). It must end,
 * stop when its slice is up and go on from there, fill what it says it fills, and change no answer — also while
 * batches that merge segments and forget facts commit between and during its slices.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { factIdFor, openShardStore, SEGMENT_SEQS, tokenize, type LogEntry, type RecallQuery, type ShardStore } from '../../shards/index.ts';
import type { PostingIndex } from '../../shards/postings.ts';
import type { MergedPostingsCache } from '../../shards/merged-postings.ts';
import { readFactTexts } from '../../shards/recall.ts';
import type { Tables } from '../../shards/tables.ts';
import { prng, T0, tempDir } from './helpers.ts';

const WORDS = Array.from({ length: 24 }, (_, i) => `word${String.fromCharCode(97 + i)}x`);
const SUBJECTS = 5;
const FACTS = 1200;
/** The facts span three merged segments and a few in an open one. */
const STEP = Math.ceil((3.1 * SEGMENT_SEQS) / FACTS);
const source = { agent: 'a', node: 'mini-1' };
const NOW = T0 + 10 * SEGMENT_SEQS * 1000;

function facts(from: number, count: number, step: number, seed: number): { seq: number; entry: LogEntry }[] {
  const rnd = prng(seed);
  const out: { seq: number; entry: LogEntry }[] = [];
  for (let i = 0; i < count; i++) {
    const seq = from + i * step;
    const subject = `person-${Math.floor(rnd() * SUBJECTS)}`;
    // Skewed words: the common ones have more postings than a recall takes per word (96), the rare ones a few.
    const words = Array.from({ length: 2 + Math.floor(rnd() * 6) }, () => WORDS[Math.floor(rnd() ** 3 * WORDS.length)]!);
    const fact = { text: `${subject} ${words.join(' ')}`, subject, predicate: `rel${i % 3}`, object: `thing${seq}`, confidence: 0.5 + rnd() * 0.5 };
    out.push({ seq, entry: { v: 1, op: 'assert', opId: `op-${seq}`, recordedAt: T0 + seq * 1000, source, fact } });
  }
  return out;
}

/** Free text, subject filters with and without words, a subject and predicate, and one `asOf`. */
function queries(): RecallQuery[] {
  const rnd = prng(5);
  const out: RecallQuery[] = [];
  for (let i = 0; i < 60; i++) {
    const words = Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => WORDS[Math.floor(rnd() * WORDS.length)]!).join(' ');
    const subject = `person-${Math.floor(rnd() * SUBJECTS)}`;
    out.push({ query: words, now: NOW, limit: 10 });
    if (i % 3 === 0) out.push({ query: words, subject, now: NOW, limit: 10 });
    if (i % 7 === 0) out.push({ subject, predicate: 'rel1', now: NOW, limit: 5 });
  }
  out.push({ query: WORDS[0]!, asOf: T0 + 2 * SEGMENT_SEQS * 1000, now: NOW });
  return out;
}

const answers = (store: ShardStore): unknown[] => queries().map((q) => store.recall(q).facts);

function internals(store: ShardStore): { postings: PostingIndex; merged: MergedPostingsCache; mergedTop: number } {
  const postings = (store as unknown as { postings: PostingIndex }).postings;
  const p = postings as unknown as { merged: MergedPostingsCache; open: { segment: number }; sealed?: { postings: { segment: number } } };
  return { postings, merged: p.merged, mergedTop: (p.sealed?.postings.segment ?? p.open.segment) - 1 };
}

/** Warms to the end in slices of `sliceMs`; returns how many slices it took. */
function warmFully(store: ShardStore, sliceMs = 2): number {
  let slices = 1;
  while (store.warmUp(performance.now() + sliceMs)) slices++;
  return slices;
}

test('a reopened store, warmed, holds every word and subject in memory and answers as before', async () => {
  const dir = tempDir();
  let store: ShardStore | undefined;
  try {
    store = openShardStore({ path: dir.path, domain: 't', durability: 'none' });
    await store.applyBatch(facts(1, FACTS, STEP, 41));
    const before = answers(store);
    await store.close();

    store = openShardStore({ path: dir.path, domain: 't', durability: 'none' });
    const { merged, mergedTop, postings } = internals(store);
    assert.ok(mergedTop >= 2, 'the store has merged segments');
    const terms = [...WORDS.map((w) => `w:${tokenize(w)[0]!}`), ...Array.from({ length: SUBJECTS }, (_, s) => `s:person-${s}`)];
    assert.ok(terms.every((t) => merged.get(t, mergedTop) === undefined), 'nothing is decoded before warming');
    // A slice whose time is already up still takes one step (so warming ends however short its slices): one word.
    assert.is(store.warmUp(performance.now() - 1), true);
    assert.is((merged as unknown as { entries: Map<string, unknown> }).entries.size, 1, 'a slice out of time took one step');

    // Slices far too short for the work: it stops part-way through and goes on where it stopped.
    assert.ok(warmFully(store, 0.01) > 1, 'warming took more than one slice');
    for (const t of terms) assert.ok(merged.get(t, mergedTop) !== undefined, `${t} is decoded after warming`);
    // Every page of facts older than this process has its words filed.
    const words = postings.words as unknown as { pages: ({ filledTo: number } | undefined)[]; completeFrom: number };
    const olderPages = Math.ceil(words.completeFrom / 4096);
    assert.ok(olderPages > 10, 'facts older than the process span many pages');
    for (let p = 0; p < olderPages; p++) assert.ok((words.pages[p]?.filledTo ?? 0) >= Math.min((p + 1) * 4096, words.completeFrom), `page ${p} of fact words is filled`);

    assert.equal(answers(store), before, 'the same answers once warmed');
    assert.is(store.warmUp(performance.now() + 50), false, 'nothing left to warm');
    await store.close();
    assert.is(store.warmUp(performance.now() + 50), false, 'a closed store warms nothing');

    // Unwarmed, the same answers too (the first-use reads the warming stands in for).
    store = openShardStore({ path: dir.path, domain: 't', durability: 'none' });
    assert.equal(answers(store), before, 'the same answers unwarmed');
    await store.close();

    // A page of fact words part-filled ahead (an eighth at a time), the rest by a recall's first use: the same answers.
    store = openShardStore({ path: dir.path, domain: 't', durability: 'none' });
    const reader = (store as unknown as { readerTables: Tables }).readerTables;
    const partWords = internals(store).postings.words;
    assert.ok(partWords.fillNext((from, to, add) => readFactTexts(reader, from, to, add)));
    assert.is((partWords as unknown as { pages: ({ filledTo: number } | undefined)[] }).pages[0]?.filledTo, 512);
    assert.equal(answers(store), before, 'the same answers with a page part-filled');
  } finally {
    await store?.close();
    dir.remove();
  }
});

test('warming while batches that merge segments and forget facts commit changes no answer', async () => {
  const dirs = [tempDir(), tempDir()];
  const stores: ShardStore[] = [];
  const open = (dir: { path: string }): ShardStore => {
    // The default durability: a batch commits asynchronously, so warming and recall run while it is in flight.
    const store = openShardStore({ path: dir.path, domain: 't' });
    stores.push(store);
    return store;
  };
  const close = async (store: ShardStore): Promise<void> => {
    stores.splice(stores.indexOf(store), 1);
    await store.close();
  };
  try {
    const first = facts(1, FACTS, STEP, 41);
    let seq = first.at(-1)!.seq;
    const forget = (i: number): { seq: number; entry: LogEntry } => ({
      seq: ++seq,
      entry: { v: 1, op: 'forget', opId: `f-${i}`, recordedAt: T0 + seq * 1000, source, factId: factIdFor('t', first[i]!.seq) },
    });
    // Each batch forgets facts in merged segments (their blocks are rewritten) and crosses a segment boundary.
    const batches: { seq: number; entry: LogEntry }[][] = [];
    for (let k = 0; k < 6; k++) {
      const batch = [forget(k * 37), forget(k * 37 + 5)];
      const more = facts(seq + 1, 100, Math.ceil((0.7 * SEGMENT_SEQS) / 100), 77 + k);
      seq = more.at(-1)!.seq;
      batch.push(...more, forget(k * 37 + 11));
      batches.push(batch);
    }

    // The reference: the whole log applied by one process that never closed its store.
    const reference = open(dirs[0]!);
    await reference.applyBatch(first);
    for (const b of batches) await reference.applyBatch(b);

    let store = open(dirs[1]!);
    await store.applyBatch(first);
    await close(store);
    store = open(dirs[1]!);
    let inFlight = 0;
    for (const b of batches) {
      let settled = false;
      const applying = store.applyBatch(b).finally(() => (settled = true));
      // Warm slices and recalls until the batch has committed, yielding to let it.
      while (!settled) {
        if (store.warmUp(performance.now() + 0.2)) inFlight++;
        store.recall({ query: 'wordax wordbx', now: NOW });
        await new Promise((r) => setImmediate(r));
      }
      await applying;
    }
    assert.ok(inFlight > 0, 'warming ran while batches were in flight');
    warmFully(store);
    assert.equal(answers(store), answers(reference));
    assert.is(store.digest(), reference.digest(), 'warming wrote nothing');
  } finally {
    for (const s of stores) await s.close();
    for (const d of dirs) d.remove();
  }
});

test.run();
