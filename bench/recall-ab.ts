/**
 * `node --import tsx --expose-gc bench/recall-ab.ts DIR [DIR …] [--facts N] [--small N] [--queries N] [--profile FILE] [--only N] [--kind text|subject] [--dump FILE] [--ready FILE] [--reopen]`:
 * the recall half of `bench:store` for one or more copies of `shards/` in one process, to compare read paths.
 *
 * Each copy loads a small (10k) and a large (1M) store with the bench's facts (`store-workload.ts`), as `bench:store`
 * does; then the same query mix runs on every store, query by query, the order rotating, so load from other work on
 * this shared machine lands on every side alike. Per copy and size it prints the median CPU per query (the bench's
 * `recall_cpu_us_*`), of free-text and of subject-filtered queries, and the 1M/10k ratio of the medians; and it
 * checks that every copy gave the same answers (ids, scores, order — the whole result, as JSON) to every query.
 * `--profile FILE` writes a CPU profile of the query phase only (the loads would drown it), for `/tmp/prof.mts`-style
 * summaries.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogEntry, RecallQuery, ShardStore } from '../shards/index.ts';
import { onePredicates, T0, Workload } from './store-workload.ts';

const args = process.argv.slice(2);
const option = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`);
  return i < 0 ? fallback : Number(args[i + 1]);
};
const codes = args.filter((a, i) => !a.startsWith('--') && (i === 0 || !args[i - 1]!.startsWith('--')));
if (codes.length === 0) throw new Error('usage: bench/recall-ab.ts DIR [DIR …] [--facts N] [--small N] [--queries N] [--profile FILE]');
const LARGE = option('facts', 1_000_000);
const SMALL = option('small', 10_000);
const QUERIES = option('queries', 3000);
const profileAt = args.indexOf('--profile');
const PROFILE = profileAt < 0 ? undefined : args[profileAt + 1];
/** `--only N`: time (and profile) the stores of N facts only. */
const ONLY = option('only', 0);
const REOPEN = args.includes('--reopen');
/** `--kind text|subject`: only that kind of query. */
const kindAt = args.indexOf('--kind');
const KIND = kindAt < 0 ? undefined : args[kindAt + 1];
const nowAt = (facts: number): number => T0 + facts * 50;
type Shards = typeof import('../shards/index.ts');

async function load(store: ShardStore, facts: number): Promise<void> {
  const workload = new Workload(42);
  for (let seq = 0; seq < facts; ) {
    const batch: { seq: number; entry: LogEntry }[] = [];
    for (let i = 0; i < 1000 && seq < facts; i++) batch.push({ seq: ++seq, entry: workload.entry(seq) });
    await store.applyBatch(batch);
  }
}

interface Side {
  readonly name: string;
  readonly facts: number;
  readonly store: ShardStore;
  readonly dir: string;
  readonly cpu: number[];
  readonly text: number[];
  readonly subject: number[];
}

const sides: Side[] = [];
const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
try {
  for (const code of codes) {
    const shards = (await import(`${code.startsWith('/') ? code : join(process.cwd(), code)}/index.ts`)) as Shards;
    for (const facts of [SMALL, LARGE]) {
      const dir = mkdtempSync(join(tmpdir(), 'shardmind-bench-recall-ab-'));
      const open = (): ShardStore => shards.openShardStore({ path: dir, domain: 'bench', predicates: onePredicates, durability: 'none' });
      let store = open();
      await load(store, facts);
      // `--reopen`: queried as a restarted replica would be (its in-memory read data filled from the records on use).
      if (REOPEN) {
        await store.close();
        store = open();
      }
      sides.push({ name: `${code}@${facts}`, facts, store, dir, cpu: [], text: [], subject: [] });
    }
  }
  (globalThis as { gc?: () => void }).gc?.();
  const queries = new Workload(7);
  for (let i = 0; i < 200; i++) {
    const q = queries.query(0);
    for (const s of sides) s.store.recall({ ...q, now: nowAt(s.facts) });
  }
  const readyAt = args.indexOf('--ready');
  if (readyAt >= 0) {
    // For attaching an outside profiler (`perf record -p`) to the query phase only.
    writeFileSync(args[readyAt + 1]!, String(process.pid));
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  const session = new Session();
  const post = (method: string, params?: object): Promise<unknown> =>
    new Promise((resolve, reject) => session.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result))));
  if (PROFILE !== undefined) {
    session.connect();
    await post('Profiler.enable');
    await post('Profiler.setSamplingInterval', { interval: 50 });
    await post('Profiler.start');
  }
  let differing = 0;
  for (let i = 0; i < QUERIES; i++) {
    const q = queries.query(0);
    if (KIND !== undefined && (KIND === 'subject') !== (q.subject !== undefined)) continue;
    const answers = new Map<number, string>();
    for (let k = 0; k < sides.length; k++) {
      const s = sides[(i + k) % sides.length]!;
      if (ONLY !== 0 && s.facts !== ONLY) continue;
      const query: RecallQuery = { ...q, now: nowAt(s.facts) };
      const cpu = process.cpuUsage();
      const facts = s.store.recall(query).facts;
      const used = process.cpuUsage(cpu);
      const us = used.user + used.system;
      s.cpu.push(us);
      (q.subject === undefined ? s.text : s.subject).push(us);
      const json = JSON.stringify(facts);
      const seen = answers.get(s.facts);
      if (seen === undefined) answers.set(s.facts, json);
      else if (seen !== json) differing++;
    }
  }
  if (PROFILE !== undefined) {
    const { profile } = (await post('Profiler.stop')) as { profile: unknown };
    writeFileSync(PROFILE, JSON.stringify(profile));
    session.disconnect();
  }
  const out: Record<string, unknown> = {};
  for (const code of codes) {
    const [small, large] = sides.filter((s) => s.name.startsWith(`${code}@`)) as [Side, Side];
    out[code] = {
      cpu_10k: median(small.cpu), cpu_1m: median(large.cpu), ratio: Number((median(large.cpu) / median(small.cpu)).toFixed(2)),
      text_10k: median(small.text), text_1m: median(large.text), subject_10k: median(small.subject), subject_1m: median(large.subject),
    };
  }
  const dumpAt = args.indexOf('--dump');
  if (dumpAt >= 0) writeFileSync(args[dumpAt + 1]!, JSON.stringify(sides.map((s) => ({ name: s.name, text: s.text, subject: s.subject }))));
  console.log(JSON.stringify({ queries: QUERIES, differing, ...out }));
} finally {
  for (const s of sides) {
    await s.store.close();
    rmSync(s.dir, { recursive: true, force: true });
  }
}
