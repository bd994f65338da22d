// test-runner: alone (measures: run by itself, test/run.ts)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { Cleanup } from '../../bench/cleanup.ts';
import { QUICK, type PeerContext } from '../../bench/context.ts';
import { startRedisTarget } from '../../bench/peers/redis.ts';
import { measureServerMemoryLostWrites, measureServerMemoryWrites } from '../../bench/peers/server-memory.ts';

function context(cleanup: Cleanup): PeerContext {
  return {
    cleanup,
    budgets: { ...QUICK, serverMemorySizes: [50], concurrentWrites: 15 },
    quick: true,
    log: () => undefined,
  };
}

test('redis peer - remembers with an fsynced AOF, recalls the fact a query came from, cleans up', async () => {
  const cleanup = new Cleanup();
  let dirs: string[] = [];
  try {
    const redis = await startRedisTarget(context(cleanup));
    await redis.preload(0, 300);
    const recall = redis.ops.find((o) => o.name === 'recall')!;
    const remember = redis.ops.find((o) => o.name === 'remember')!;
    for (let i = 0; i < 20; i++) assert.ok((await recall.run(i, 300)) >= 1, `query ${i} finds its source fact`);
    assert.is(await remember.run(1_000_000, 300), 1);
    dirs = [...cleanup.dirs];
    assert.ok(dirs.length > 0);
    assert.ok(existsSync(`${dirs[0]}/appendonlydir`) || existsSync(`${dirs[0]}/appendonly.aof`), 'the AOF is on');
    await redis.close();
  } finally {
    await cleanup.run();
  }
  for (const d of dirs) assert.not.ok(existsSync(d), `${d} removed`);
});

test('server-memory peer - times writes at a seeded size and accounts every concurrent write', async () => {
  const cleanup = new Cleanup();
  try {
    const ctx = context(cleanup);
    const [w] = await measureServerMemoryWrites(ctx);
    assert.is(w!.entities, 50);
    assert.ok(w!.createEntity.n > 0 && w!.createEntity.p50us > 0);
    const lost = await measureServerMemoryLostWrites(ctx);
    assert.is(lost.attempted, 30);
    assert.is(lost.acknowledged, 30);
    // The file holds whatever the last rename left: at least that writer's final entity, at most all of them.
    assert.ok(lost.present >= 1 && lost.present <= 30, `present ${lost.present}`);
    assert.is(lost.lost, lost.acknowledged - lost.present);
  } finally {
    await cleanup.run();
  }
});

test.run();
