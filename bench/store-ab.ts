/**
 * `node --import tsx --expose-gc bench/store-ab.ts DIR_A DIR_B [--facts N]`: loads the `bench:store` facts through
 * two copies of `shards/` in one process, a batch of 1000 to one then the same batch to the other, and reports the
 * CPU µs per fact of each, and whether both ended with the same digest.
 *
 * Why alternate in one process: on this shared 2-core machine the CPU per fact of one code moved by 10–20% between
 * runs a minute apart (other engineers' tests), more than most changes of the write path. Alternating batches puts
 * the same interference on both sides; the two stores share the caches, so each runs a little slower than alone.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogEntry } from '../shards/index.ts';
import { onePredicates, Workload } from './store-workload.ts';

const [dirA, dirB] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
if (dirA === undefined || dirB === undefined) throw new Error('usage: bench/store-ab.ts DIR_A DIR_B [--facts N]');
const at = process.argv.indexOf('--facts');
const FACTS = at < 0 ? 600_000 : Number(process.argv[at + 1]);
type Shards = typeof import('../shards/index.ts');
const sides = await Promise.all(
  [dirA, dirB].map(async (code) => {
    const shards = (await import(`${code.startsWith('/') ? code : join(process.cwd(), code)}/index.ts`)) as Shards;
    const dir = mkdtempSync(join(tmpdir(), 'shardmind-bench-ab-'));
    return { code, dir, store: shards.openShardStore({ path: dir, domain: 'bench', predicates: onePredicates, durability: 'none' }), cpuUs: 0 };
  }),
);
try {
  const workload = new Workload(42);
  for (let seq = 0; seq < FACTS; ) {
    const batch: { seq: number; entry: LogEntry }[] = [];
    for (let i = 0; i < 1000; i++) batch.push({ seq: ++seq, entry: workload.entry(seq) });
    // Alternate which side goes first, so neither always runs with the other's garbage.
    const order = (seq / 1000) % 2 === 0 ? sides : [sides[1]!, sides[0]!];
    for (const side of order) {
      const cpu = process.cpuUsage();
      await side.store.applyBatch(batch);
      const used = process.cpuUsage(cpu);
      side.cpuUs += used.user + used.system;
    }
  }
  const digests = sides.map((s) => s.store.digest());
  console.log(JSON.stringify({ facts: FACTS, ...Object.fromEntries(sides.map((s, i) => [`cpu_us_per_fact_${'ab'[i]}`, Number((s.cpuUs / FACTS).toFixed(2))])), same_digest: digests[0] === digests[1] }));
} finally {
  for (const s of sides) {
    await s.store.close();
    rmSync(s.dir, { recursive: true, force: true });
  }
}
