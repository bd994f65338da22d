/**
 * `warmInTurn`: the process warms its opened stores one after another, a slice per turn of the event loop, and drops
 * a store it is no longer wanted for. Real reopened LMDB stores with merged index segments; each is wrapped only to
 * record when its `warmUp` is called.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openShardStore, SEGMENT_SEQS, type LogEntry, type ShardStore } from '../../shards/index.ts';
import { warmInTurn } from '../../actors/store-warming.ts';
import { prng, T0, tempDir } from '../shards/helpers.ts';

const FACTS = 900;
/** Three merged segments and an open one: a reopened store has postings to warm. */
const STEP = Math.ceil((3.1 * SEGMENT_SEQS) / FACTS);

async function reopenedStore(path: string, seed: number): Promise<ShardStore> {
  const rnd = prng(seed);
  const log: { seq: number; entry: LogEntry }[] = [];
  for (let i = 0; i < FACTS; i++) {
    const seq = 1 + i * STEP;
    const text = Array.from({ length: 4 }, () => `w${Math.floor(rnd() ** 2 * 300).toString(36)}x`).join(' ');
    log.push({ seq, entry: { v: 1, op: 'assert', opId: `op-${seq}`, recordedAt: T0 + seq, source: { agent: 'a' }, fact: { text, subject: `s${i % 40}`, predicate: 'p', object: `o${i}` } } });
  }
  const loading = openShardStore({ path, domain: 'd', durability: 'none' });
  await loading.applyBatch(log);
  await loading.close();
  return openShardStore({ path, domain: 'd', durability: 'none' });
}

/** `store` with each `warmUp` call recorded in `calls` under `name`. */
function recorded(store: ShardStore, name: string, calls: string[]): ShardStore {
  return new Proxy(store, {
    get: (target, prop) => {
      if (prop === 'warmUp') return (until: number) => (calls.push(name), target.warmUp(until));
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

test('stores are warmed one after another, and one no longer wanted is dropped', async () => {
  const dirs = [tempDir(), tempDir(), tempDir()];
  const stores: ShardStore[] = [];
  let keepAlive: NodeJS.Timeout | undefined;
  try {
    for (const [i, d] of dirs.entries()) stores.push(await reopenedStore(d.path, 10 + i));
    const calls: string[] = [];
    const [a, b, c] = stores.map((s, i) => recorded(s, 'abc'[i]!, calls)) as [ShardStore, ShardStore, ShardStore];
    const ended = (name: string) =>
      new Promise<{ name: string; slices: number }>((resolve, reject) => {
        const store = { a, b, c }[name]!;
        warmInTurn({ store, wanted: () => true, ended: (_ms, slices) => resolve({ name, slices }), failed: reject });
      });
    // A timer pending, as in a host: warming must not wait for it between slices (an unref'd immediate did, a slice
    // per tick). The whole warm takes well under a tick.
    let ticks = 0;
    keepAlive = setInterval(() => ticks++, 5000);
    // b stops being wanted after its second slice (its store replaced, say): it is dropped, c still warms.
    let bSlices = 0;
    const doneA = ended('a');
    warmInTurn({ store: b, wanted: () => ++bSlices <= 2, ended: () => assert.unreachable('b was dropped'), failed: (err) => assert.unreachable(String(err)) });
    const doneC = ended('c');
    const [ra, rc] = await Promise.all([doneA, doneC]);
    assert.is(ticks, 0, 'warming waited for the timer between slices');

    // Several slices each (these stores take more than 4 ms to warm), never interleaved: all of a's, b's two, then c's.
    assert.ok(ra.slices > 1 && rc.slices > 1, `a took ${ra.slices} slices, c ${rc.slices}`);
    assert.is(calls.join(''), 'a'.repeat(ra.slices) + 'bb' + 'c'.repeat(rc.slices));
    // a and c are warm; b was left part-warmed.
    assert.is(a.warmUp(performance.now() + 1000), false);
    assert.is(c.warmUp(performance.now() + 1000), false);
    assert.is(stores[1]!.warmUp(performance.now() - 1), true, 'b still has work left');
  } finally {
    clearInterval(keepAlive);
    for (const s of stores) await s.close();
    for (const d of dirs) d.remove();
  }
});

test.run();
