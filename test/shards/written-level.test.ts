/**
 * The store records the highest level its log's entries said they were written at (`appliedWrittenLevel`, decisions
 * §78): what a new leader starts writing at. It is a function of the log alone — equal on replicas that applied it in
 * one batch, message by message, or reopened between messages — survives a reopen, counts an entry apply rejected
 * (it is in the log all the same), and is absent from a store whose log never said a level, whose bytes stay what
 * they were. Real LMDB stores in temp dirs.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openShardStore, type BatchEntry, type LogEntry, type LogMessage, type ShardStore, type ShardStoreOptions } from '../../shards/index.ts';
import { assertEntry, entry, T0, tempDir } from './helpers.ts';

const PREDICATES = { works_in_timezone: { cardinality: 'one', halfLifeDays: 365 } } as const;
const options = (path: string): ShardStoreOptions => ({ path, domain: 'calendar', predicates: PREDICATES, durability: 'none' });

function zone(who: string, object: string, at: number, level?: number): LogEntry {
  const e = assertEntry({ text: `${who} works in ${object}`, subject: who, predicate: 'works_in_timezone', object, validFrom: at }, { recordedAt: at, source: { agent: 'a1' } });
  return level === undefined ? e : ({ ...e, level } as LogEntry);
}
const entity = (id: string, aliases: string[], level?: number): LogEntry =>
  entry({ op: 'entity', entity: { id, name: id, aliases }, ...(level !== undefined && { level }) } as never);
const group = (entries: LogEntry[]): BatchEntry => ({ v: 1, op: 'batch', opId: `g-${entries[0]!.opId}`, recordedAt: entries[0]!.recordedAt, entries });

/** A log as a level-3 leader wrote it, then as a level-4 one: the level appears at seq 4, inside a group. */
function mixedLog(): LogMessage[] {
  return [
    zone('ann', 'PST', T0),
    entity('dana', ['Dana']),
    group([zone('bob', 'PST', T0 + 1), zone('cy', 'PST', T0 + 2)]),
    group([zone('bob', 'EST', T0 + 3, 4), zone('ann', 'CET', T0 + 4, 4)]),
    // Rejected by apply at level 4 (the name is dana's): in the log all the same, so it counts.
    entity('dana-white', ['Dana'], 4),
    zone('cy', 'EST', T0 + 5, 4),
  ];
}

async function withDirs(n: number, body: (paths: string[]) => Promise<void>): Promise<void> {
  const dirs = Array.from({ length: n }, () => tempDir());
  try {
    await body(dirs.map((d) => d.path));
  } finally {
    for (const d of dirs) d.remove();
  }
}

async function playAll(s: ShardStore, log: readonly LogMessage[], from = 1): Promise<void> {
  for (let i = 0; i < log.length; i++) await s.apply(log[i]!, from + i);
}

test('a log that never says a level leaves no record: the store reads undefined, before and after a reopen', async () => {
  await withDirs(1, async ([path]) => {
    let s = openShardStore(options(path!));
    await playAll(s, mixedLog().slice(0, 3));
    assert.is(s.appliedWrittenLevel(), undefined);
    await s.close();
    s = openShardStore(options(path!));
    assert.is(s.appliedWrittenLevel(), undefined);
    await s.close();
  });
});

test('the first entry that says level 4 raises it, in a group or alone, and it stays across a reopen', async () => {
  await withDirs(1, async ([path]) => {
    let s = openShardStore(options(path!));
    const log = mixedLog();
    await playAll(s, log.slice(0, 3));
    assert.is(s.appliedWrittenLevel(), undefined);
    await s.apply(log[3]!, 4);
    assert.is(s.appliedWrittenLevel(), 4, 'a group whose members say level 4');
    await s.close();
    s = openShardStore(options(path!));
    assert.is(s.appliedWrittenLevel(), 4, 'reopened');
    await playAll(s, log.slice(4), 5);
    assert.is(s.appliedWrittenLevel(), 4);
    await s.close();
  });
});

test('a rejected entry that says its level counts: the log holds it', async () => {
  await withDirs(1, async ([path]) => {
    const s = openShardStore(options(path!));
    await s.apply(entity('dana', ['Dana']), 1);
    const r = await s.apply(entity('dana-white', ['Dana'], 4), 2);
    assert.is(r.status, 'rejected');
    assert.is(s.appliedWrittenLevel(), 4);
    await s.close();
  });
});

test('replicas agree: one digest and one level for the log in one batch, message by message, and reopened after each message', async () => {
  await withDirs(3, async ([a, b, c]) => {
    const log = mixedLog();
    const one = openShardStore(options(a!));
    await one.applyBatch(log.map((entry, i) => ({ seq: i + 1, entry })));
    const each = openShardStore(options(b!));
    await playAll(each, log);
    for (let i = 0; i < log.length; i++) {
      const reopened = openShardStore(options(c!));
      await reopened.apply(log[i]!, i + 1);
      await reopened.close();
    }
    const last = openShardStore(options(c!));
    assert.is(one.appliedWrittenLevel(), 4);
    assert.is(each.appliedWrittenLevel(), 4);
    assert.is(last.appliedWrittenLevel(), 4);
    assert.is(each.digest(), one.digest());
    assert.is(last.digest(), one.digest());
    for (const s of [one, each, last]) await s.close();
  });
});

test('a replayed message (at or below appliedSeq) raises nothing', async () => {
  await withDirs(1, async ([path]) => {
    const s = openShardStore(options(path!));
    await playAll(s, mixedLog().slice(0, 3));
    // seq 3 again, now carrying a stamped entry: already applied, so it is not in this store's log.
    await s.applyBatch([{ seq: 3, entry: zone('dee', 'PST', T0 + 9, 4) }]);
    assert.is(s.appliedWrittenLevel(), undefined);
    await s.close();
  });
});

test.run();
