/**
 * Predicate names are names, not JavaScript property keys: a predicate called `constructor`, `toString` or
 * `__proto__` takes the default spec (or its own, when the config gives one) on the write path and when a reopened
 * store rebuilds its `one`-value index — so a replica that restarted supersedes exactly like one that did not.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { openShardStore, type ShardStoreOptions } from '../../shards/index.ts';
import { assertEntry, DAY, T0, tempDir } from './helpers.ts';

const NAMES = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'lives_in'];

test('predicate names like Object members take the default spec, before and after a reopen', async () => {
  const dir = tempDir();
  try {
    for (const predicate of NAMES) {
      const options: ShardStoreOptions = {
        path: join(dir.path, predicate),
        domain: 'd',
        defaultPredicate: { cardinality: 'one', halfLifeDays: 30 },
        durability: 'none',
      };
      const fact = (object: string) => ({ text: `ada ${predicate} ${object}`, subject: 'ada', predicate, object });
      let store = openShardStore(options);
      const oslo = await store.apply(assertEntry(fact('oslo'), { recordedAt: T0 }), 1);
      const paris = await store.apply(assertEntry(fact('paris'), { recordedAt: T0 + 1 }), 2);
      assert.is(paris.status, 'superseded_previous', `${predicate}: a one-valued predicate by default`);
      assert.is(store.getFact(oslo.factId!)?.halfLifeDays, 30, `${predicate}: the default half-life, not Object's member`);
      await store.close();

      store = openShardStore(options);
      const rome = await store.apply(assertEntry(fact('rome'), { recordedAt: T0 + 2 }), 3);
      assert.is(rome.status, 'superseded_previous', `${predicate}: still one-valued after the reopen rebuilt the index`);
      const active = store.history('ada', predicate).filter((f) => f.status === 'active');
      assert.equal(active.map((f) => f.object), ['rome'], `${predicate}: one active value`);
      await store.close();
    }
  } finally {
    dir.remove();
  }
});

test("a predicate named like an Object member keeps the spec the config gives it, after a reopen too", async () => {
  const dir = tempDir();
  try {
    const options: ShardStoreOptions = {
      path: dir.path,
      domain: 'd',
      predicates: JSON.parse('{"constructor": {"cardinality": "many", "halfLifeDays": 5}, "__proto__": {"cardinality": "many", "halfLifeDays": 7}}'),
      defaultPredicate: { cardinality: 'one', halfLifeDays: 30 },
      durability: 'none',
    };
    for (const [predicate, halfLife] of [['constructor', 5], ['__proto__', 7]] as const) {
      let store = openShardStore(options);
      const a = await store.apply(assertEntry({ text: `tea ${predicate} one`, subject: 'tea', predicate, object: 'one' }, { recordedAt: T0 + DAY }), store.appliedSeq + 1);
      assert.is(store.getFact(a.factId!)?.halfLifeDays, halfLife);
      await store.close();
      store = openShardStore(options);
      const b = await store.apply(assertEntry({ text: `tea ${predicate} two`, subject: 'tea', predicate, object: 'two' }, { recordedAt: T0 + 2 * DAY }), store.appliedSeq + 1);
      assert.is(b.status, 'created', `${predicate}: many-valued by its own spec`);
      assert.is(store.history('tea', predicate).filter((f) => f.status === 'active').length, 2);
      await store.close();
    }
  } finally {
    dir.remove();
  }
});

test.run();
