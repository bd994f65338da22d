/**
 * An entity's own id names it, whatever aliases other entities were given (walkthrough session 12, F1: the alias
 * "Dana" of `dana-white` took over the id `dana`, and a fact about `dana` was stored about `dana-white`). Level 4's
 * rules (decisions §71): a level-4 entity entry never takes a name another entity holds (refused, naming it), an
 * id resolves before aliases when a fact is written, and reads resolve ids first. Entries without `level` apply as
 * before, so an old log replays to its old result. Real LMDB stores in temp dirs.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openShardStore, type EntityInput, type LogEntry, type ShardStore } from '../../shards/index.ts';
import { assertEntry, entry, T0, tempDir } from './helpers.ts';

async function withStores(n: number, body: (stores: ShardStore[]) => Promise<void>): Promise<void> {
  const dirs = Array.from({ length: n }, () => tempDir());
  const stores = dirs.map((d) => openShardStore({ path: d.path, domain: 'calendar', durability: 'none' }));
  try {
    await body(stores);
  } finally {
    for (const s of stores) await s.close();
    for (const d of dirs) d.remove();
  }
}

const entity = (e: EntityInput, level?: number): LogEntry => entry({ op: 'entity', entity: e, ...(level !== undefined && { level }) } as never);
const fact = (subject: string, level?: number, object = 'America/Los_Angeles'): LogEntry => {
  const e = assertEntry({ text: `${subject} works in ${object}`, subject, predicate: 'works_in_timezone', object });
  return level === undefined ? e : ({ ...e, level } as LogEntry);
};
const DANA: EntityInput = { id: 'dana', name: 'Dana Lee', aliases: ['Dana', 'dana@example.com'] };
const WHITE: EntityInput = { id: 'dana-white', name: 'Dana White', aliases: ['Dana'] };

async function play(s: ShardStore, log: LogEntry[], from = 1): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < log.length; i++) {
    const r = await s.apply(log[i]!, from + i);
    out.push(r.status === 'rejected' ? `rejected: ${r.error?.message}` : r.status);
  }
  return out;
}

test('F1: at level 4 an alias that names another entity is refused, and a fact by the id stays on that entity', async () => {
  await withStores(1, async ([s]) => {
    const results = await play(s!, [entity(DANA, 4), entity(WHITE, 4), fact('dana', 4)]);
    assert.equal(results, ['entity', 'rejected: entity.aliases[0]: "Dana" already names entity "dana"', 'created']);
    assert.is(s!.recall({ subject: 'dana', now: T0 }).facts[0]?.subject, 'dana');
    assert.is(s!.getEntity('Dana')?.id, 'dana');
    assert.is(s!.getEntity('dana-white')?.aliases.length, undefined, 'the refused write created nothing');
  });
});

test('F1: at level 4 a new entity whose id is another entity\'s alias (or id in another case) is refused', async () => {
  await withStores(1, async ([s]) => {
    const results = await play(s!, [entity(WHITE, 4), entity({ id: 'dana', name: 'Dana Lee' }, 4), entity({ id: 'Dana-White' }, 4), entity({ ...WHITE, name: 'D. White' }, 4)]);
    assert.equal(results, [
      'entity',
      'rejected: entity.id: "dana" already names entity "dana-white"',
      'rejected: entity.id: "Dana-White" already names entity "dana-white"',
      'entity',
    ]);
  });
});

test('F1: a store written before level 4 (the alias took the id) resolves the id first for level-4 facts and for reads', async () => {
  await withStores(2, async ([s, old]) => {
    for (const [store, level] of [[s!, 4], [old!, undefined]] as const) {
      // Written by an older leader: the alias "Dana" of dana-white overwrote the key of the id `dana`.
      await play(store, [entity(DANA), entity(WHITE), fact('dana')]);
      await play(store, [fact('dana', level, 'America/New_York')], 4);
    }
    const subjects = (store: ShardStore) => store.recall({ subject: 'dana-white', now: T0, includeInactive: true }).facts.map((f) => f.subject);
    // The old-level fact stays where it was stored; the level-4 one is about dana.
    assert.equal(s!.history('dana-white').map((f) => f.subject), ['dana-white']);
    assert.equal(s!.history('dana').map((f) => f.subject), ['dana'], 'reads by the id find the id');
    assert.equal(subjects(old!), ['dana-white', 'dana-white'], 'an old-level log keeps its old result');
    assert.is(s!.getEntity('dana')?.name, 'Dana Lee');
  });
});

test('F1: a level-4 write of an entity stored with a taken alias does not take it again; the id reclaims its own key', async () => {
  await withStores(1, async ([s]) => {
    await play(s!, [entity(DANA), entity(WHITE)]);
    assert.is(s!.getEntity('Dana')?.id, 'dana-white', 'before: the alias took the key');
    assert.equal(await play(s!, [entity({ id: 'dana-white', attributes: { team: 'sales' } }, 4)], 3), ['entity']);
    assert.is(s!.getEntity('Dana')?.id, 'dana-white', 'a level-4 write does not move a key it does not need');
    assert.equal(await play(s!, [entity({ id: 'dana', attributes: { team: 'platform' } }, 4)], 4), ['entity']);
    assert.is(s!.getEntity('Dana')?.id, 'dana', "the id's own key is the id's again");
    assert.equal(await play(s!, [entity({ id: 'dana-white', attributes: { level: 3 } }, 4)], 5), ['entity']);
    assert.is(s!.getEntity('Dana')?.id, 'dana', 'and stays so');
    assert.equal(s!.getEntity('dana-white')?.aliases, ['Dana'], 'the alias stays listed');
  });
});

test('replicas converge on entity logs: one batch, entry by entry, reopened halfway: one digest', async () => {
  const log: LogEntry[] = [entity(DANA), entity(WHITE), fact('dana'), entity({ id: 'bob', aliases: ['Bob'] }, 4), entity({ id: 'bob-smith', aliases: ['Bob', 'Bobby'] }, 4), entity({ id: 'dana' }, 4), fact('dana', 4), fact('Bob', 4), entity({ id: 'dana-white', aliases: ['DW'] }, 4), fact('Dana', 4)];
  const seqd = log.map((e, i) => ({ seq: i + 1, entry: e }));
  const dirs = [tempDir(), tempDir()];
  const open = (i: number) => openShardStore({ path: dirs[i]!.path, domain: 'calendar', durability: 'none' });
  try {
    const a = open(0);
    await a.applyBatch(seqd);
    let b = open(1);
    for (const m of seqd.slice(0, 5)) await b.applyBatch([m]);
    await b.close();
    b = open(1);
    for (const m of seqd.slice(5)) await b.applyBatch([m]);
    assert.is(a.digest(), b.digest());
    assert.equal(a.history('bob').map((f) => f.subject), ['bob']);
    await a.close();
    await b.close();
  } finally {
    for (const d of dirs) d.remove();
  }
});

test.run();
