/**
 * `node --import tsx --expose-gc bench/store-load.ts [--facts N] [--group K] [--count] [--digest] [--runs R]`: only the bulk
 * load of `bench:store` (the same facts, 1000 entries to a transaction), for profiling (`node --cpu-prof …`) and
 * A/B runs of the write path without the queries. `--group K` feeds the entries as grouped log messages of K
 * (group commit), `--count` reports LMDB writes per fact by table and the commit's share of the CPU. Prints one
 * JSON line per run (`--shards DIR` loads through another copy of `shards/`, for A/B runs): facts/s (wall) and CPU µs per fact (the whole process: on a shared machine it drifts far less
 * than wall time), and on Linux the main thread's CPU µs per fact (`load_main_cpu_us_per_fact`, from
 * /proc/self/task/PID/stat: without the garbage collector's helper threads, closer to what sets wall time).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogMessage } from '../shards/index.ts';
import { onePredicates, Workload } from './store-workload.ts';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : Number(process.argv[i + 1]);
};
const FACTS = arg('facts', 1_000_000);
const GROUP = arg('group', 1);
const RUNS = arg('runs', 1);
const COUNT = process.argv.includes('--count');
/** `--digest`: print the store's content digest, to check that a faster write path left the same bytes. */
const DIGEST = process.argv.includes('--digest');
const BATCH = 1000;
// `--shards DIR`: load through another copy of `shards/` (e.g. the previous commit's, for an A/B in the same minutes).
const shardsAt = process.argv.indexOf('--shards');
const { openShardStore } = (await import(shardsAt < 0 ? '../shards/index.ts' : `${process.argv[shardsAt + 1]}/index.ts`)) as typeof import('../shards/index.ts');

/** The main thread's user + system CPU time in µs (Linux), from its /proc stat: ticks, so summed over many batches. */
const MAIN_STAT = `/proc/self/task/${process.pid}/stat`;
const HAS_MAIN_STAT = existsSync(MAIN_STAT);
const TICK_US = 10_000;
function mainCpuUs(): number {
  if (!HAS_MAIN_STAT) return 0;
  const fields = readFileSync(MAIN_STAT, 'utf8').split(') ')[1]!.split(' ');
  // After the command's closing parenthesis: field 3 is the state, so utime and stime (fields 14, 15) are at 11, 12.
  return (Number(fields[11]) + Number(fields[12])) * TICK_US;
}

type Countable = { putSync: (...a: unknown[]) => unknown; removeSync: (...a: unknown[]) => unknown };

for (let run = 0; run < RUNS; run++) {
  const dir = mkdtempSync(join(tmpdir(), 'shardmind-bench-load-'));
  const workload = new Workload(42);
  try {
    const store = openShardStore({ path: dir, domain: 'bench', predicates: onePredicates, durability: 'none' });
    const puts: Record<string, number> = {};
    let commitUs = 0;
    if (COUNT) {
      // The store's tables are private; a measuring tool may look inside.
      const t = (store as unknown as { t: Record<string, Countable> & { env: { transactionSync: (f: () => unknown) => unknown } } }).t;
      for (const name of ['facts', 'changes', 'episodes', 'ops', 'blocks', 'df', 'meta', 'entities', 'aliases']) {
        const table = t[name]!;
        const put = table.putSync.bind(table);
        const remove = table.removeSync.bind(table);
        table.putSync = (...a: unknown[]) => ((puts[name] = (puts[name] ?? 0) + 1), put(...a));
        table.removeSync = (...a: unknown[]) => ((puts[`${name}-remove`] = (puts[`${name}-remove`] ?? 0) + 1), remove(...a));
      }
      // Commit time: transactionSync minus its callback.
      const env = t.env;
      const transactionSync = env.transactionSync.bind(env);
      env.transactionSync = (f: () => unknown) => {
        let inside = 0;
        const started = process.cpuUsage();
        const result = transactionSync(() => {
          const s = process.cpuUsage();
          const r = f();
          const u = process.cpuUsage(s);
          inside = u.user + u.system;
          return r;
        });
        const u = process.cpuUsage(started);
        commitUs += u.user + u.system - inside;
        return result;
      };
    }
    let seq = 0;
    let entries = 0;
    let wallMs = 0;
    let cpuUs = 0;
    let mainUs = 0;
    while (entries < FACTS) {
      const batch: { seq: number; entry: LogMessage }[] = [];
      for (let i = 0; i < BATCH; ) {
        if (GROUP <= 1) {
          batch.push({ seq: ++seq, entry: workload.entry(++entries) });
          i++;
          continue;
        }
        const group = [];
        for (let k = 0; k < GROUP && i < BATCH; k++, i++) group.push(workload.entry(++entries));
        batch.push({ seq: ++seq, entry: { v: 1, op: 'batch', opId: `group-${seq}`, recordedAt: group[0]!.recordedAt, entries: group } });
      }
      const main = mainCpuUs();
      const cpu = process.cpuUsage();
      const started = performance.now();
      await store.applyBatch(batch);
      // Wall time first: reading /proc for the main thread's CPU (~0.1 µs a fact) is the bench's, not the store's.
      wallMs += performance.now() - started;
      const used = process.cpuUsage(cpu);
      mainUs += mainCpuUs() - main;
      cpuUs += used.user + used.system;
    }
    const facts = store.stats().facts;
    const digest = DIGEST ? store.digest() : undefined;
    await store.close();
    const perFact = (n: number): number => Number((n / entries).toFixed(3));
    console.log(JSON.stringify({
      entries,
      group: GROUP,
      facts,
      load_facts_per_s: Math.round(entries / (wallMs / 1000)),
      load_cpu_us_per_fact: Number((cpuUs / entries).toFixed(2)),
      ...(HAS_MAIN_STAT && { load_main_cpu_us_per_fact: Number((mainUs / entries).toFixed(2)) }),
      ...(digest !== undefined && { digest }),
      ...(COUNT && { commit_cpu_us_per_fact: perFact(commitUs), writes_per_fact: Object.fromEntries(Object.entries(puts).map(([k, v]) => [k, perFact(v)])) }),
    }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
