/**
 * A store keeps derived state in memory — the write path's identity and `one`-value indexes, the open index
 * segment, a merge in progress — and rebuilds it from LMDB when it opens. A store closed and reopened anywhere in
 * the log must then apply the rest exactly like one that never closed: the same result for every entry (created,
 * reinforced, superseded …), the same bytes, the same answers.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openShardStore, SEGMENT_SEQS, type ApplyResult, type LogEntry, type ShardStore } from '../../shards/index.ts';
import { DAY, PREDICATES, randomLog, T0, tempDir } from './helpers.ts';

/** Index segments (`shards/postings.ts`): the cuts below land inside and just after them, several segments in. */
const LATER_SEQS = 8 * SEGMENT_SEQS;

type Log = { seq: number; entry: LogEntry }[];

async function feed(store: ShardStore, log: Log, batch: number): Promise<ApplyResult[]> {
  const results: ApplyResult[] = [];
  for (let i = 0; i < log.length; i += batch) results.push(...(await store.applyBatch(log.slice(i, i + batch))));
  return results;
}

function answers(store: ShardStore): unknown {
  const now = T0 + 200 * DAY;
  return {
    stats: { ...store.stats(), bytes: 0 },
    recall: ['pdf report', 'coffee meeting note', 'oslo'].map((query) => store.recall({ query, now, limit: 30 })),
    subject: ['s1', 's7', 'alias3'].map((subject) => store.recall({ subject, query: 'tea', now, limit: 30, includeInactive: true })),
    history: ['s0', 's5', 's9'].map((s) => store.history(s, 'p0').map((f) => [f.id, f.status, f.confirmations])),
  };
}

// Durability `none` commits in a synchronous transaction, the others on lmdb-js's write thread: both ways.
for (const durability of ['none', 'meta'] as const) {
  test(`a store closed and reopened at many points applies the rest exactly like one never closed (durability ${durability})`, async () => {
    // 1% of steps jump 40k sequences: the log crosses index segments and merge windows, many segments deep.
    const log = randomLog(4000, 13, 40_000);
    const last = log.at(-1)!.seq;
    assert.ok(last > LATER_SEQS, `the log reaches the ninth segment (last seq ${last})`);
    const firstAt = (seq: number): number => log.findIndex((x) => x.seq >= seq);
    // Cuts: plain ones, and ones right after a segment boundary (inside its merge window), early and later on.
    const cuts = [...new Set([700, firstAt(SEGMENT_SEQS) + 1, 1500, firstAt(LATER_SEQS) + 1, 2600, 3333])].sort((a, b) => a - b);
    const dirs = [tempDir(), tempDir()];
    const opts = (path: string) => ({ path, domain: 'd', predicates: PREDICATES, durability });
    const never = openShardStore(opts(dirs[0]!.path));
    let restarted = openShardStore(opts(dirs[1]!.path));
    try {
      const expected = await feed(never, log, 50);
      const got: ApplyResult[] = [];
      let from = 0;
      for (const cut of [...cuts, log.length]) {
        got.push(...(await feed(restarted, log.slice(from, cut), 37)));
        from = cut;
        await restarted.close();
        restarted = openShardStore(opts(dirs[1]!.path));
        assert.is(restarted.appliedSeq, log[cut - 1]!.seq);
      }
      assert.equal(got, expected, 'every entry got the same result');
      assert.ok(expected.some((r) => r.status === 'reinforced') && expected.some((r) => r.status === 'superseded_previous'), 'the log exercises the identity and one-value indexes');
      assert.is(restarted.digest(), never.digest());
      assert.equal(answers(restarted), answers(never));
      // And both keep going the same way after the last restart.
      const more = randomLog(300, 17).map((x, i) => ({ seq: last + 1 + i, entry: { ...x.entry, opId: `more-${i}` } as LogEntry }));
      assert.equal(await feed(restarted, more, 64), await feed(never, more, 300));
      assert.is(restarted.digest(), never.digest());
    } finally {
      await never.close();
      await restarted.close();
      for (const d of dirs) d.remove();
    }
  });
}

for (const older of [1, 2, 3, 4, 5, 6, 7]) {
  test(`a store of another format (${older}) is refused at open, not misread`, async () => {
    const dir = tempDir();
    const opts = { path: dir.path, domain: 'd', durability: 'none' as const };
    try {
      const store = openShardStore(opts);
      await store.apply({ v: 1, op: 'assert', opId: 'a', recordedAt: T0, source: { agent: 'a' }, fact: { text: 'hello' } }, 1);
      await store.close();
      // Rewrite the format marker as an older version would have left it (format 1 wrote no marker; the marker is a
      // msgpack number, one byte for small ones).
      const { open } = await import('lmdb');
      const env = open({ path: dir.path, maxDbs: 16 });
      const meta = env.openDB('meta', { encoding: 'binary' });
      if (older === 1) await meta.remove('format');
      else await meta.put('format', Buffer.from([older]));
      await env.close();
      assert.throws(() => openShardStore(opts), new RegExp(`store format ${older}, this version reads format 8`));
    } finally {
      dir.remove();
    }
  });
}

test.run();
