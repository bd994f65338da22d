/**
 * A batch that fails midway (an unexpected error while applying, not a rejected entry) must leave nothing behind:
 * not on disk, and not in the store's in-memory state (the write indexes, the open index segment, counters) — the
 * store then continues exactly like a fresh store fed only what committed. A replica that silently diverged at the
 * same appliedSeq is the worst bug a shard can have.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openShardStore, type ApplyResult, type LogEntry, type ShardStore } from '../../shards/index.ts';
import { DAY, PREDICATES, randomLog, T0, tempDir } from './helpers.ts';

type Log = { seq: number; entry: LogEntry }[];

/** An entry whose fact blows up when the store reads it: an injected failure in the middle of a transaction. */
function exploding(seq: number): { seq: number; entry: LogEntry } {
  const fact = { subject: 's1', predicate: 'p0' } as Record<string, unknown>;
  Object.defineProperty(fact, 'text', { enumerable: true, get: () => { throw new Error('injected failure'); } });
  return { seq, entry: { v: 1, op: 'assert', opId: `boom-${seq}`, recordedAt: T0, source: { agent: 'a' }, fact } as unknown as LogEntry };
}

async function feed(store: ShardStore, log: Log, batch: number): Promise<ApplyResult[]> {
  const out: ApplyResult[] = [];
  for (let i = 0; i < log.length; i += batch) out.push(...(await store.applyBatch(log.slice(i, i + batch))));
  return out;
}

// Durability `none` commits a batch in a synchronous transaction, the others in an lmdb-js child transaction on
// its write thread (`shards/store.ts`): both must abort cleanly.
for (const durability of ['none', 'meta'] as const) {
  test(`a batch that throws midway changes nothing; the store goes on like one that never saw it (durability ${durability})`, async () => {
    const log = randomLog(2400, 21);
    const dirs = [tempDir(), tempDir()];
    const opts = (path: string) => ({ path, domain: 'd', predicates: PREDICATES, durability });
    const clean = openShardStore(opts(dirs[0]!.path));
    const failed = openShardStore(opts(dirs[1]!.path));
    try {
      const head = log.slice(0, 1200);
      const tail = log.slice(1200);
      await feed(clean, head, 100);
      await feed(failed, head, 100);
      const before = failed.digest();
      // The failing batch holds real entries (creates, reinforcements, supersedes …) ahead of the one that throws.
      const doomed = [...tail.slice(0, 300), exploding(tail[299]!.seq + 1)];
      let threw = false;
      try {
        await failed.applyBatch(doomed);
      } catch (err) {
        threw = /injected failure/.test(String(err));
      }
      assert.ok(threw, 'the failing batch rejects with its error');
      assert.is(failed.appliedSeq, head.at(-1)!.seq);
      assert.is(failed.digest(), before, 'nothing of the failed batch reached LMDB');
      // Same results entry by entry, same bytes, same answers as the store that never saw the failure.
      assert.equal(await feed(failed, tail, 100), await feed(clean, tail, 100));
      assert.is(failed.digest(), clean.digest());
      const q = { query: 'pdf report coffee', now: T0 + 100 * DAY, limit: 30 };
      assert.equal(failed.recall(q), clean.recall(q));
      assert.equal(failed.history('s3', 'p0'), clean.history('s3', 'p0'));
    } finally {
      await clean.close();
      await failed.close();
      for (const d of dirs) d.remove();
    }
  });
}

test.run();
