/**
 * A free-text recall skips the candidates that cannot reach its top k: after the k-th best score, by relevance
 * (candidates come best first, and a score never exceeds its relevance), and, per candidate, by relevance × stored
 * confidence before its decay is computed. The answers must be those of scoring every candidate. Graph expansion
 * turns both cuts off (it must know every match), and on facts that name no entity it adds nothing — so the same
 * query with `hops: 1` is the reference.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openShardStore, type LogEntry, type RecallQuery, type ShardStore } from '../../shards/index.ts';
import { DAY, prng, T0, tempDir } from './helpers.ts';

const WORDS = Array.from({ length: 24 }, (_, i) => `word${i}`);
const FACTS = 2000;
const source = { agent: 'a', node: 'mini-1' };

function log(): { seq: number; entry: LogEntry }[] {
  const rnd = prng(31);
  const word = (): string => WORDS[Math.floor(rnd() ** 2 * WORDS.length)]!;
  const out: { seq: number; entry: LogEntry }[] = [];
  for (let seq = 1; seq <= FACTS; seq++) {
    const text = Array.from({ length: 2 + Math.floor(rnd() * 6) }, word).join(' ');
    // Confidences from nearly nothing to certain; observed up to 60 days and recorded up to 20 days before the
    // queries: decay and recency both vary, and some facts lose nearly nothing to either.
    const recordedAt = T0 - Math.floor(rnd() ** 3 * 20 * DAY);
    const fact = { text, confidence: 0.02 + rnd() * 0.98, observedAt: recordedAt - Math.floor(rnd() ** 2 * 40 * DAY) };
    out.push({ seq, entry: { v: 1, op: 'assert', opId: `op-${seq}`, recordedAt, source, fact } });
  }
  return out;
}

const answer = (store: ShardStore, q: RecallQuery): [string, number][] => store.recall(q).facts.map((f) => [f.id, f.score]);

test('free-text answers equal those of scoring every candidate', async () => {
  const dir = tempDir();
  const store = openShardStore({ path: dir.path, domain: 'test', durability: 'none', recallFloor: 0 });
  try {
    await store.applyBatch(log());
    const rnd = prng(7);
    const now = T0;
    let compared = 0;
    for (let i = 0; i < 400; i++) {
      const query = Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => WORDS[Math.floor(rnd() * WORDS.length)]!).join(' ');
      const q: RecallQuery = { query, now, limit: [1, 3, 10, 25][i % 4]!, ...(i % 5 === 0 ? { minConfidence: 0.3 } : {}) };
      const got = answer(store, q);
      assert.equal(got, answer(store, { ...q, hops: 1 }), `query "${query}", limit ${q.limit}`);
      if (got.length === q.limit) compared++;
    }
    // Most queries fill their limit, so the cuts had something to cut.
    assert.ok(compared > 300, `only ${compared} queries filled their limit`);
  } finally {
    await store.close();
    dir.remove();
  }
});

test.run();
